"""The Unizin Data Warehouse (PostgreSQL): section SIS ids and the warehouse's freshness."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg2

from vocab import FatalSourceError, SourceFormatError

logger = logging.getLogger(__name__)

UDW = "udw"
CHUNK = 5_000  # ids per query: bound parameters, never an unbounded IN list
SECTION_SIS_SQL = "SELECT canvas_id, sis_source_id FROM course_section_dim WHERE canvas_id IN %s"
CANVASDATADATE_SQL = "SELECT value FROM unizin_metadata WHERE key = %s"


class UdwClient:
    def __init__(self, db_params: Mapping[str, str], *, connect_timeout: int = 15) -> None:
        self._params = dict(db_params)
        self._connect_timeout = connect_timeout

    def _connect(self) -> Any:
        try:
            return psycopg2.connect(host=self._params["host"], port=int(self._params["port"]),
                                    dbname=self._params["dbname"], user=self._params["user"],
                                    password=self._params.get("password") or None,
                                    connect_timeout=self._connect_timeout)
        except psycopg2.Error as exc:
            # psycopg2's message names host and reason, never the password.
            raise FatalSourceError(f"cannot connect to the UDW {self._where()}: {_first_line(exc)}",
                                   source=UDW) from None

    def _where(self) -> str:
        return f"{self._params.get('host')}:{self._params.get('port')}/{self._params.get('dbname')}"

    def section_sis_ids(self, section_ids: Iterable[int]) -> dict[int, str | None]:
        """canvas_id -> sis_source_id for the given sections (absent sections are simply missing)."""
        ids = sorted(set(section_ids))
        result: dict[int, str | None] = {}
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                for chunk in _chunks(ids, CHUNK):
                    cursor.execute(SECTION_SIS_SQL, (tuple(chunk),))
                    result.update({int(canvas_id): sis for canvas_id, sis in cursor.fetchall()})
        except psycopg2.Error as exc:
            raise FatalSourceError(f"UDW section query failed: {_first_line(exc)}", source=UDW) from None
        finally:
            connection.close()
        logger.info("UDW: SIS ids for %d of %d section(s)", sum(v is not None for v in result.values()), len(ids))
        return result

    def canvasdatadate(self) -> Any:
        """The raw `canvasdatadate` value of unizin_metadata."""
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(CANVASDATADATE_SQL, ("canvasdatadate",))
                row = cursor.fetchone()
        except psycopg2.Error as exc:
            raise FatalSourceError(f"UDW metadata query failed: {_first_line(exc)}", source=UDW) from None
        finally:
            connection.close()
        if row is None:
            raise SourceFormatError("UDW unizin_metadata has no canvasdatadate", source=UDW)
        return row[0]


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
