"""Loads the generated university into a PostgreSQL stand-in for the Unizin Data Warehouse (UDW).

Only what the inventory job reads is built: `course_section_dim` (Canvas Data 1 columns, one row per
section the last export knew) and `unizin_metadata` (`canvasdatadate`, `schemaversion`). The warehouse
trails Canvas by default (`sandbox.udw_lag.UdwLag`: some sections missing, some with an older SIS id;
`NO_LAG` for a warehouse in step). Rows are shaped by the pure `course_section_rows` / `metadata_rows`;
`load_udw` only does the I/O, with COPY for speed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql

from sandbox.udw_lag import UdwLag, warehouse_sis_ids
from sandbox.university import Section, University

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1.1.0"
# Canvas Data surrogate keys are shard-prefixed large numbers, distinct from the Canvas ids.
_SHARD = 17_700_000_000_000_000
_CONNECT_KEYS = ("host", "port", "user", "password")
_MAINTENANCE_DB = "postgres"

_COURSE_SECTION_DIM = """
CREATE TABLE course_section_dim (
    id bigint PRIMARY KEY,
    canvas_id bigint NOT NULL,
    name varchar(256),
    course_id bigint,
    enrollment_term_id bigint,
    default_section boolean,
    accepting_enrollments boolean,
    can_manually_enroll boolean,
    start_at timestamp,
    end_at timestamp,
    created_at timestamp,
    updated_at timestamp,
    workflow_state varchar(256),
    restrict_enrollments_to_section_dates boolean,
    nonxlist_course_id bigint,
    sis_source_id varchar(256)
)
"""
COURSE_SECTION_DIM_COLUMNS = (
    "id", "canvas_id", "name", "course_id", "enrollment_term_id", "default_section", "accepting_enrollments",
    "can_manually_enroll", "start_at", "end_at", "created_at", "updated_at", "workflow_state",
    "restrict_enrollments_to_section_dates", "nonxlist_course_id", "sis_source_id",
)
_UNIZIN_METADATA = "CREATE TABLE unizin_metadata (key text PRIMARY KEY, value text)"


def load_udw(u: University, db_params: Mapping[str, str], *, create_database: bool = True,
             lag: UdwLag | None = None) -> None:
    """(Re)build the UDW tables in database db_params["dbname"], creating the database if asked and missing.

    `lag` (default `UdwLag()`) decides which sections are missing or stale; see sandbox.udw_lag.
    """
    rows = list(course_section_rows(u, UdwLag() if lag is None else lag))
    if create_database:
        _create_database(db_params)
    with closing(_connect(db_params, db_params["dbname"])) as conn:
        with conn, conn.cursor() as cur:             # one transaction: readers never see half a load
            cur.execute("DROP TABLE IF EXISTS course_section_dim, unizin_metadata")
            cur.execute(_COURSE_SECTION_DIM)
            cur.execute(_UNIZIN_METADATA)
            _copy(cur, "course_section_dim", COURSE_SECTION_DIM_COLUMNS, rows)
            _copy(cur, "unizin_metadata", ("key", "value"), metadata_rows(u))
            cur.execute("CREATE INDEX course_section_dim_canvas_id ON course_section_dim (canvas_id)")
            cur.execute("ANALYZE course_section_dim")
    logger.info("UDW %s loaded: %d of %d sections", db_params["dbname"], len(rows), len(u.sections))


def drop_udw(db_params: Mapping[str, str]) -> None:
    """Drop database db_params["dbname"] (if it exists), closing other sessions on it."""
    with closing(_connect(db_params, _MAINTENANCE_DB)) as conn:
        conn.autocommit = True                         # DROP DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_params["dbname"])))


def course_section_rows(u: University, lag: UdwLag) -> Iterator[tuple[Any, ...]]:
    """One course_section_dim row per section the warehouse has under `lag`, with the SIS id it holds, in
    COURSE_SECTION_DIM_COLUMNS order (naive UTC timestamps)."""
    first_section: dict[int, int] = {}
    for section in u.sections:                        # Canvas creates the default section first
        first_section.setdefault(section.course_id, section.id)
    sis_ids = warehouse_sis_ids(u.sections, lag, u.seed)
    for section in u.sections:
        if section.id in sis_ids:
            yield _section_row(u, section, sis_ids[section.id],
                               is_default=first_section[section.course_id] == section.id)


def metadata_rows(u: University) -> list[tuple[str, str]]:
    return [("canvasdatadate", format_canvasdatadate(u.canvasdatadate)), ("schemaversion", SCHEMA_VERSION)]


def format_canvasdatadate(moment: datetime) -> str:
    """'YYYY-MM-DD HH:MM:SS.ffffff+00:00', the value format UDW consumers parse."""
    return moment.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


def _section_row(u: University, section: Section, sis_source_id: str | None, *,
                 is_default: bool) -> tuple[Any, ...]:
    course = u.course_by_id[section.course_id]
    term = u.term_by_id[course.term_id]
    created = course.created_at + timedelta(minutes=0 if is_default else 5 + section.id % 600)
    return (
        _SHARD + section.id, section.id, section.name, _SHARD + course.id, _SHARD + term.id,
        is_default, True, None, _naive(term.start_at), _naive(term.end_at), _naive(created),
        _naive(max(created, u.canvasdatadate - timedelta(days=1 + section.id % 90))),
        "deleted" if course.workflow_state == "deleted" else "active",
        False, None, sis_source_id,
    )


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _connect(db_params: Mapping[str, str], dbname: str) -> Any:
    params = {key: db_params[key] for key in _CONNECT_KEYS if db_params.get(key) not in (None, "")}
    return psycopg2.connect(dbname=dbname, **params)


def _create_database(db_params: Mapping[str, str]) -> None:
    with closing(_connect(db_params, _MAINTENANCE_DB)) as conn:
        conn.autocommit = True                         # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_params["dbname"],))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(db_params["dbname"])))


def _copy(cur: Any, table: str, columns: Iterable[str], rows: Iterable[tuple[Any, ...]]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_text(value) for value in row))
        buffer.write("\n")
    buffer.seek(0)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    cur.copy_expert(statement.as_string(cur), buffer)


def _copy_text(value: Any) -> str:
    """A value in COPY's text format: \\N for NULL, backslash escapes for the delimiters."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    text = str(value)
    if any(ch in text for ch in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text
