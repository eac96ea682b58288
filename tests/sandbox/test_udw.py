"""The UDW loader against the real PostgreSQL, in a throwaway database per test."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest

from sandbox.generator import generate_university
from sandbox.udw import (
    COURSE_SECTION_DIM_COLUMNS,
    _copy_text,
    course_section_rows,
    drop_udw,
    format_canvasdatadate,
    load_udw,
)
from sandbox.university import Section, University

pytestmark = pytest.mark.integration


@pytest.fixture
def db_params() -> Iterator[dict[str, str]]:
    params = {
        "host": os.environ.get("TEST_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("TEST_PG_PORT", "5432"),
        "user": os.environ.get("TEST_PG_USER", "postgres"),
        "password": os.environ.get("TEST_PG_PASSWORD", ""),
        "dbname": f"udw_test_{uuid.uuid4().hex[:12]}",
    }
    yield params
    drop_udw(params)


@pytest.fixture(scope="module")
def small() -> University:
    return generate_university("small", seed=42)


def query(params: dict[str, str], statement: str, args: tuple = ()) -> list[tuple]:
    connect = {k: v for k, v in params.items() if v}
    with closing(psycopg2.connect(**connect)) as conn, conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall()


def database_exists(params: dict[str, str]) -> bool:
    maintenance = {**params, "dbname": "postgres"}
    return bool(query(maintenance, "SELECT 1 FROM pg_database WHERE datname = %s", (params["dbname"],)))


def test_sections_are_loaded_one_row_each_with_sis_ids(db_params: dict[str, str], small: University) -> None:
    load_udw(small, db_params)
    rows = query(db_params, "SELECT canvas_id, name, sis_source_id, course_id FROM course_section_dim")
    assert sorted((r[0], r[1], r[2]) for r in rows) == sorted((s.id, s.name, s.sis_source_id) for s in small.sections)
    # The job's query: bound tuple parameter, a NULL stays NULL (not the text 'None').
    wanted = tuple(s.id for s in small.sections[:50])
    found = dict(query(db_params, "SELECT canvas_id, sis_source_id FROM course_section_dim WHERE canvas_id IN %s",
                       (wanted,)))
    assert found == {s.id: s.sis_source_id for s in small.sections[:50]}
    assert None in found.values()


def test_section_dimension_is_consistent_with_the_university(db_params: dict[str, str], small: University) -> None:
    load_udw(small, db_params)
    columns = [r[0] for r in query(db_params, "SELECT column_name FROM information_schema.columns WHERE "
                                              "table_name = 'course_section_dim' ORDER BY ordinal_position")]
    assert tuple(columns) == COURSE_SECTION_DIM_COLUMNS
    defaults = query(db_params, "SELECT course_id, count(*) FILTER (WHERE default_section) FROM course_section_dim "
                                "GROUP BY course_id")
    assert len(defaults) == len(small.courses) and {n for _, n in defaults} == {1}
    surrogate = query(db_params, "SELECT count(DISTINCT id), count(*) FROM course_section_dim")[0]
    assert surrogate[0] == surrogate[1] == len(small.sections)


def test_metadata_holds_the_canvasdatadate(db_params: dict[str, str], small: University) -> None:
    load_udw(small, db_params)
    metadata = dict(query(db_params, "SELECT key, value FROM unizin_metadata"))
    assert set(metadata) == {"canvasdatadate", "schemaversion"}
    parsed = datetime.strptime(metadata["canvasdatadate"], "%Y-%m-%d %H:%M:%S.%f%z")
    assert parsed == small.canvasdatadate and datetime.fromisoformat(metadata["canvasdatadate"]) == parsed


def test_reload_replaces_tables_and_drop_removes_database(db_params: dict[str, str], small: University) -> None:
    other = generate_university("small", seed=43, courses_with_students=5, courses_without_students=2,
                                deleted_courses=0, enrollments=100, big_courses=0)
    load_udw(small, db_params)
    load_udw(other, db_params, create_database=False)
    assert query(db_params, "SELECT count(*) FROM course_section_dim")[0][0] == len(other.sections)
    canvasdatadate = query(db_params, "SELECT value FROM unizin_metadata WHERE key = 'canvasdatadate'")[0][0]
    assert canvasdatadate == format_canvasdatadate(other.canvasdatadate)
    drop_udw(db_params)
    assert not database_exists(db_params)


def test_awkward_text_survives_copy(db_params: dict[str, str], small: University) -> None:
    awkward = ["tab\there", "new\nline", "back\\slash \\N", "Café 🎓 — ½", ""]
    sections = [Section(s.id, s.course_id, name, s.sis_source_id)
                for s, name in zip(small.sections, awkward, strict=False)] + small.sections[len(awkward):]
    university = dataclasses.replace(small, sections=sections)
    load_udw(university, db_params)
    names = dict(query(db_params, "SELECT canvas_id, name FROM course_section_dim"))
    assert [names[s.id] for s in sections[: len(awkward)]] == awkward


def test_copy_text_format() -> None:
    assert _copy_text(None) == "\\N" and _copy_text(True) == "t" and _copy_text(False) == "f"
    assert _copy_text("a\tb\\c\nd") == "a\\tb\\\\c\\nd"
    assert _copy_text(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02 03:04:05"


def test_rows_follow_the_column_order(small: University) -> None:
    rows = list(course_section_rows(small))
    assert len(rows) == len(small.sections) and all(len(r) == len(COURSE_SECTION_DIM_COLUMNS) for r in rows)
    by_column = dict(zip(COURSE_SECTION_DIM_COLUMNS, rows[0], strict=True))
    assert by_column["canvas_id"] == small.sections[0].id and by_column["default_section"] is True
    assert all(v.tzinfo is None for r in rows for v in r if isinstance(v, datetime))


def test_format_canvasdatadate() -> None:
    moment = datetime(2020, 1, 15, 4, 12, 33, 123456, tzinfo=UTC)
    assert format_canvasdatadate(moment) == "2020-01-15 04:12:33.123456+00:00"
