"""The UDW loader against the real PostgreSQL, in throwaway databases (random names, dropped afterwards)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest

from sandbox.databases import POSTGRES
from sandbox.generator import generate_university
from sandbox.udw import (
    COURSE_SECTION_DIM_COLUMNS,
    _copy_text,
    course_section_rows,
    drop_udw,
    format_canvasdatadate,
    load_udw,
)
from sandbox.udw_lag import NO_LAG, Fate, UdwLag, section_fates, warehouse_sis_ids
from sandbox.university import Section, University

pytestmark = pytest.mark.integration


def fresh_params() -> dict[str, str]:
    """Connection parameters naming a database that does not exist yet (load_udw creates it)."""
    return {**POSTGRES, "dbname": f"udw_{uuid.uuid4().hex[:12]}"}


@pytest.fixture
def db_params() -> Iterator[dict[str, str]]:
    params = fresh_params()
    yield params
    drop_udw(params)


@pytest.fixture(scope="module")
def small() -> University:
    return generate_university("small", seed=42)


LAG = UdwLag(missing_share=0.1, stale_share=0.15, seed=3)


def loaded_udw(university: University, lag: UdwLag) -> Iterator[dict[str, str]]:
    """A fresh database loaded with `university` as a warehouse trailing Canvas by `lag`; dropped afterwards."""
    params = fresh_params()
    load_udw(university, params, lag=lag)
    yield params
    drop_udw(params)


@pytest.fixture(scope="module")
def loaded(small: University) -> Iterator[dict[str, str]]:
    """One database loaded with the small university and no lag, shared by the read-only tests."""
    yield from loaded_udw(small, NO_LAG)


@pytest.fixture(scope="module")
def lagging(small: University) -> Iterator[dict[str, str]]:
    """The small university in a warehouse trailing Canvas by LAG."""
    yield from loaded_udw(small, LAG)


def query(params: dict[str, str], statement: str, args: tuple = ()) -> list[tuple]:
    connect = {k: v for k, v in params.items() if v}
    with closing(psycopg2.connect(**connect)) as conn, conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall()


def database_exists(params: dict[str, str]) -> bool:
    maintenance = {**params, "dbname": "postgres"}
    return bool(query(maintenance, "SELECT 1 FROM pg_database WHERE datname = %s", (params["dbname"],)))


def test_sections_are_loaded_one_row_each_with_sis_ids(loaded: dict[str, str], small: University) -> None:
    rows = query(loaded, "SELECT canvas_id, name, sis_source_id, course_id FROM course_section_dim")
    assert sorted((r[0], r[1], r[2]) for r in rows) == sorted((s.id, s.name, s.sis_source_id) for s in small.sections)
    # The job's query: bound tuple parameter, a NULL stays NULL (not the text 'None').
    wanted = tuple(s.id for s in small.sections[:50])
    found = dict(query(loaded, "SELECT canvas_id, sis_source_id FROM course_section_dim WHERE canvas_id IN %s",
                       (wanted,)))
    assert found == {s.id: s.sis_source_id for s in small.sections[:50]}
    assert None in found.values()


def test_a_lagging_warehouse_lacks_some_sections_and_holds_older_ids_of_others(lagging: dict[str, str],
                                                                              small: University) -> None:
    rows = dict(query(lagging, "SELECT canvas_id, sis_source_id FROM course_section_dim"))
    fates = section_fates(small.sections, LAG, small.seed)
    canvas = {s.id: s.sis_source_id for s in small.sections}
    assert set(rows) == {i for i, fate in fates.items() if fate is not Fate.MISSING}
    assert {i for i in rows if rows[i] != canvas[i]} == {i for i, fate in fates.items() if fate is Fate.STALE}
    assert rows == warehouse_sis_ids(small.sections, LAG, small.seed)
    assert 0 < len(canvas) - len(rows) < len(canvas)


def test_default_load_trails_canvas(db_params: dict[str, str], small: University) -> None:
    load_udw(small, db_params)
    rows = dict(query(db_params, "SELECT canvas_id, sis_source_id FROM course_section_dim"))
    assert rows == warehouse_sis_ids(small.sections, UdwLag(), small.seed)
    assert len(rows) < len(small.sections)


def test_section_dimension_is_consistent_with_the_university(loaded: dict[str, str], small: University) -> None:
    columns = [r[0] for r in query(loaded, "SELECT column_name FROM information_schema.columns WHERE "
                                           "table_name = 'course_section_dim' ORDER BY ordinal_position")]
    assert tuple(columns) == COURSE_SECTION_DIM_COLUMNS
    defaults = query(loaded, "SELECT course_id, count(*) FILTER (WHERE default_section) FROM course_section_dim "
                             "GROUP BY course_id")
    assert len(defaults) == len(small.courses) and {n for _, n in defaults} == {1}
    surrogate = query(loaded, "SELECT count(DISTINCT id), count(*) FROM course_section_dim")[0]
    assert surrogate[0] == surrogate[1] == len(small.sections)


def test_metadata_holds_the_canvasdatadate(loaded: dict[str, str], small: University) -> None:
    metadata = dict(query(loaded, "SELECT key, value FROM unizin_metadata"))
    assert set(metadata) == {"canvasdatadate", "schemaversion"}
    parsed = datetime.strptime(metadata["canvasdatadate"], "%Y-%m-%d %H:%M:%S.%f%z")
    assert parsed == small.canvasdatadate and datetime.fromisoformat(metadata["canvasdatadate"]) == parsed


def test_load_into_an_existing_database(udw_db_params: dict[str, str], small: University) -> None:
    load_udw(small, udw_db_params, create_database=False, lag=NO_LAG)
    assert query(udw_db_params, "SELECT count(*) FROM course_section_dim")[0][0] == len(small.sections)


def test_reload_replaces_tables_and_drop_removes_database(db_params: dict[str, str], small: University) -> None:
    other = generate_university("small", seed=43, courses_with_students=5, courses_without_students=2,
                                deleted_courses=0, enrollments=100, big_courses=0)
    assert not database_exists(db_params)
    load_udw(small, db_params, lag=NO_LAG)
    assert database_exists(db_params)
    load_udw(other, db_params, lag=NO_LAG)               # database exists now: tables are replaced
    assert query(db_params, "SELECT count(*) FROM course_section_dim")[0][0] == len(other.sections)
    canvasdatadate = query(db_params, "SELECT value FROM unizin_metadata WHERE key = 'canvasdatadate'")[0][0]
    assert canvasdatadate == format_canvasdatadate(other.canvasdatadate)
    drop_udw(db_params)
    assert not database_exists(db_params)


def test_awkward_text_survives_copy(udw_db_params: dict[str, str], small: University) -> None:
    awkward = ["tab\there", "new\nline", "back\\slash \\N", "Café 🎓 — ½", ""]
    sections = [Section(s.id, s.course_id, name, s.sis_source_id)
                for s, name in zip(small.sections, awkward, strict=False)] + small.sections[len(awkward):]
    university = dataclasses.replace(small, sections=sections)
    load_udw(university, udw_db_params, create_database=False, lag=NO_LAG)
    names = dict(query(udw_db_params, "SELECT canvas_id, name FROM course_section_dim"))
    assert [names[s.id] for s in sections[: len(awkward)]] == awkward


def test_copy_text_format() -> None:
    assert _copy_text(None) == "\\N" and _copy_text(True) == "t" and _copy_text(False) == "f"
    assert _copy_text("a\tb\\c\nd") == "a\\tb\\\\c\\nd"
    assert _copy_text(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02 03:04:05"


def test_rows_follow_the_column_order(small: University) -> None:
    rows = list(course_section_rows(small, NO_LAG))
    assert len(rows) == len(small.sections) and all(len(r) == len(COURSE_SECTION_DIM_COLUMNS) for r in rows)
    by_column = dict(zip(COURSE_SECTION_DIM_COLUMNS, rows[0], strict=True))
    assert by_column["canvas_id"] == small.sections[0].id and by_column["default_section"] is True
    assert all(v.tzinfo is None for r in rows for v in r if isinstance(v, datetime))


def test_format_canvasdatadate() -> None:
    moment = datetime(2020, 1, 15, 4, 12, 33, 123456, tzinfo=UTC)
    assert format_canvasdatadate(moment) == "2020-01-15 04:12:33.123456+00:00"
