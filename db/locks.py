"""Server-side named locks (`GET_LOCK`) held on a dedicated connection.

A named lock belongs to the session that took it and is released when that session ends — by `RELEASE_LOCK`, by
closing the connection, or by the server noticing the connection is gone when the process was killed (SIGKILL
included). So a lock can never outlive its holder, unlike a row in a table (MariaDB Knowledge Base "GET_LOCK";
MySQL Reference Manual "Locking Functions": names are limited to 64 characters since MySQL 5.7).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import pymysql

from db.engine import connect_dedicated

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 64
PREFIX = "course_inventory"
POLL_SECONDS = 1          # each GET_LOCK waits at most this long, so a wait is logged and bounded in steps
# The lock connection idles while the job runs: keep the server from closing it (wait_timeout, 8 h by default).
IDLE_SECONDS = 24 * 3600
MAX_IDLE_SECONDS = 31_536_000     # the server's upper bound for wait_timeout


def lock_name(database: str, purpose: str) -> str:
    """`course_inventory.<database>.<purpose>`, or a digest of it when that is longer than the server allows."""
    name = f"{PREFIX}.{database}.{purpose}"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]
    return f"{PREFIX}.{digest}"


class NamedLock:
    """`with NamedLock(params, name) as lock: if lock.acquire(wait_seconds): ...`; released on exit."""

    def __init__(self, db_params: Mapping[str, Any], name: str, *, hold_seconds: float = IDLE_SECONDS,
                 connect: Callable[[], Any] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        """`hold_seconds`: how long the lock may be held without a word on its connection (the job's deadline)."""
        self.name = name
        self._idle = int(min(MAX_IDLE_SECONDS, max(IDLE_SECONDS, hold_seconds + 3600)))
        self._connect = connect or (lambda: connect_dedicated(db_params, read_timeout=POLL_SECONDS + 30))
        self._clock = clock
        self._connection: Any = None
        self.held = False

    def acquire(self, wait_seconds: float) -> bool:
        """True once the lock is ours; False when another session still held it after `wait_seconds`."""
        if self._connection is None:
            self._connection = self._connect()
            self._query(f"SET SESSION wait_timeout = {self._idle}")
        deadline = self._clock() + max(0.0, wait_seconds)
        logged = False
        while True:
            step = int(min(POLL_SECONDS, max(0.0, deadline - self._clock())))
            if self._query("SELECT GET_LOCK(%s, %s)", (self.name, step)) == 1:
                self.held = True
                return True
            if self._clock() >= deadline:
                return False
            if not logged:
                logger.info("waiting up to %.0fs for the lock %s (held by connection %s)", wait_seconds,
                            self.name, self.holder())
                logged = True
            if step == 0:
                time.sleep(min(0.2, max(0.0, deadline - self._clock())))

    def holder(self) -> int | None:
        """The server connection id holding the lock (None when free)."""
        return self._query("SELECT IS_USED_LOCK(%s)", (self.name,))

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if self.held:
                self.held = False
                with connection.cursor() as cursor:
                    cursor.execute("SELECT RELEASE_LOCK(%s)", (self.name,))
        except (pymysql.MySQLError, OSError) as exc:  # closing the connection below releases it anyway
            logger.debug("RELEASE_LOCK %s failed: %s", self.name, exc)
        finally:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                connection.close()

    def _query(self, sql: str, args: tuple[Any, ...] | None = None) -> Any:
        with self._connection.cursor() as cursor:
            cursor.execute(sql, args)
            row = cursor.fetchone()
        return row[0] if row else None

    def __enter__(self) -> NamedLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
