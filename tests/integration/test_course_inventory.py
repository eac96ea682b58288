"""COURSE_INVENTORY end to end: simulated Canvas + gateway, real MariaDB, and (when configured) a real
PostgreSQL UDW, in step with Canvas or lagging behind it."""

import dataclasses
import logging
import re
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from clients.canvas import CanvasClient
from clients.http import Timeouts
from clients.retry import RetryPolicy
from course_inventory.inventory import TABLES, run_course_inventory
from environ import with_defaults
from sandbox.databases import POSTGRES
from sandbox.expected import (
    TABLE_COLUMNS,
    expected_inventory,
    rows_as_sorted_tuples,
    sis_id_disagreements,
    warehouse_section_sis_ids,
)
from sandbox.faults import FaultOptions
from sandbox.generator import generate_university
from sandbox.httpserver import ServerOptions
from sandbox.throttle import ThrottleOptions
from sandbox.udw_lag import NO_LAG, UdwLag
from sandbox.university import University
from source_settings import canvas_settings
from tests.helpers.canvas_sandbox import canvas_sandbox
from vocab import JobError, ValidDataSourceName


@pytest.fixture(scope="module")
def university():
    return generate_university("small", seed=7)


def all_terms(university):
    return [t.id for t in university.terms]


def loaded(engine, table):
    columns = TABLE_COLUMNS[table]
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM `{table}`")).mappings().all()
    return rows_as_sorted_tuples(result, columns)


def assert_matches_expected(engine, university, term_ids, section_sis_ids=None):
    expected = expected_inventory(university, term_ids, section_sis_ids=section_sis_ids)
    for table in TABLES:
        want = rows_as_sorted_tuples(expected[table], TABLE_COLUMNS[table])
        got = loaded(engine, table)
        assert got == want, f"{table}: {len(got)} rows loaded, {len(want)} expected"


def counts(engine):
    with engine.connect() as conn:  # one transaction: a consistent snapshot of all six tables
        return tuple(conn.execute(sa.text(f"SELECT COUNT(*) FROM `{t}`")).scalar() for t in TABLES)


def test_without_a_udw_inventory_equals_expected_row_for_row(university, migrated_engine, migrated_db_params,
                                                              caplog):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms) as box:
        assert "UDW" not in box.env
        with caplog.at_level(logging.INFO, logger="course_inventory"):
            statuses = run_course_inventory(box.env, engine=migrated_engine)
    assert_matches_expected(migrated_engine, university, terms)   # section SIS ids: Canvas's Section.sisId
    assert [s.data_source_name for s in statuses] == [ValidDataSourceName.CANVAS_API]
    assert statuses[0].data_updated_at <= datetime.now(UTC)
    assert "no UDW configured: section SIS ids come from Canvas" in caplog.text
    assert "differ between Canvas and the UDW" not in caplog.text


def disagreement_count(caplog) -> int | None:
    """The count the job logged (None when it logged that both sources agree)."""
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("section SIS ids:")]
    assert len(messages) == 1, messages
    found = re.search(r"(\d+) of (\d+) section\(s\) differ", messages[0])
    return None if found is None else int(found.group(1))


LAG = UdwLag(missing_share=0.08, stale_share=0.06, seed=5)


@pytest.mark.parametrize("sis_ids_from", [None, "UDW", "CANVAS"])
def test_with_a_lagging_udw_the_differences_are_counted_and_the_chosen_source_is_stored(
        university, udw_db_params, migrated_engine, migrated_db_params, caplog, sis_ids_from):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms,
                        udw_lag=LAG, sis_ids_from=sis_ids_from) as box:
        with caplog.at_level(logging.INFO, logger="course_inventory"):
            statuses = run_course_inventory(box.env, engine=migrated_engine)
    expected_differences = sis_id_disagreements(university, terms, LAG)
    assert len(expected_differences) > 5
    assert disagreement_count(caplog) == len(expected_differences)
    example = expected_differences[0]
    assert f"section {example[0]}: Canvas " in caplog.text
    stored_from_udw = sis_ids_from in (None, "UDW")                       # the warehouse wins by default
    assert f"storing the {'UDW' if stored_from_udw else 'CANVAS'} values" in caplog.text
    warehouse = warehouse_section_sis_ids(university, LAG) if stored_from_udw else None
    assert_matches_expected(migrated_engine, university, terms, section_sis_ids=warehouse)
    assert [s.data_source_name for s in statuses] == [ValidDataSourceName.CANVAS_API,
                                                      ValidDataSourceName.UNIZIN_DATA_WAREHOUSE]
    assert statuses[1].data_updated_at == university.canvasdatadate.astimezone(UTC)


def test_with_a_udw_in_step_both_sources_agree(university, udw_db_params, migrated_engine, migrated_db_params,
                                               caplog):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms,
                        udw_lag=NO_LAG) as box:
        with caplog.at_level(logging.INFO, logger="course_inventory"):
            run_course_inventory(box.env, engine=migrated_engine)
    assert disagreement_count(caplog) is None and "agree on all" in caplog.text
    assert_matches_expected(migrated_engine, university, terms)


def test_unreachable_udw_fails_the_job_and_keeps_previous_data(university, migrated_engine, migrated_db_params):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms) as box:
        run_course_inventory(box.env, engine=migrated_engine)
        absent = {**POSTGRES, "dbname": "udw_that_does_not_exist", "password": "udw-secret-4c1d"}
        env = {**box.env, "UDW": absent}
        with pytest.raises(JobError, match="previous data kept: cannot connect to the UDW") as failure:
            run_course_inventory(env, engine=migrated_engine)
    assert "udw-secret-4c1d" not in str(failure.value)
    assert_matches_expected(migrated_engine, university, terms)


@pytest.mark.parametrize("throttle_status", [429, 403])
def test_same_rows_with_faults_and_throttling(university, migrated_engine, migrated_db_params,
                                              throttle_status):
    terms = all_terms(university)
    options = ServerOptions(
        seed=throttle_status,
        faults=FaultOptions(http500=0.03, http502_503=0.02, reset=0.02, bad_json=0.01, slow=0.005, slow_seconds=3),
        # A small bucket so the test run really gets throttled.
        throttle=ThrottleOptions(enabled=True, status=throttle_status, hwm=1.0, up_front=0.5, leak=1.0),
    )
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms,
                        options=options, attempts=6) as box:
        settings = canvas_settings(with_defaults(box.env), timeouts=Timeouts(connect=2, read=1.0))
        policy = RetryPolicy(max_attempts=6, backoff_initial=0.01, backoff_max=0.05, throttle_initial=0.05,
                             throttle_max=0.5)
        with CanvasClient(settings, policy=policy) as canvas:
            run_course_inventory(box.env, engine=migrated_engine, canvas=canvas)
            stats = canvas.stats.snapshot()
        server_stats = box.canvas.stats.snapshot()
    assert_matches_expected(migrated_engine, university, terms)
    assert stats.retries > 0 and sum(server_stats["faults"].values()) > 0
    assert stats.throttled > 0


def with_overlong_course_name(university: University) -> University:
    victim = next(c for c in university.courses if c.term_id == university.terms[-1].id
                  and university.total_students(c.id) > 0)
    courses = [dataclasses.replace(c, name="x" * 300) if c.id == victim.id else c for c in university.courses]
    fields = {f.name: getattr(university, f.name) for f in dataclasses.fields(university)}
    return University(**{**fields, "courses": courses})


def test_failed_load_keeps_previous_data(university, migrated_engine, migrated_db_params):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms) as box:
        run_course_inventory(box.env, engine=migrated_engine)
    broken = with_overlong_course_name(university)
    with canvas_sandbox(broken, udw_db=None, inventory_db=migrated_db_params, term_ids=terms) as box:
        with pytest.raises(JobError, match="previous data kept.*Data too long for column 'name'"):
            run_course_inventory(box.env, engine=migrated_engine)
    assert_matches_expected(migrated_engine, university, terms)


def test_source_failure_keeps_previous_data(university, migrated_engine, migrated_db_params):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms) as box:
        run_course_inventory(box.env, engine=migrated_engine)
    broken = ServerOptions(faults=FaultOptions(http500=1.0, max_consecutive=1000))
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms,
                        options=broken, attempts=2) as box:
        settings = canvas_settings(with_defaults(box.env))
        with CanvasClient(settings, policy=RetryPolicy(max_attempts=2, budget_seconds=0,
                                                       backoff_initial=0.01)) as canvas:
            with pytest.raises(JobError, match="500"):
                run_course_inventory(box.env, engine=migrated_engine, canvas=canvas)
    assert_matches_expected(migrated_engine, university, terms)


def test_readers_see_old_or_new_data_never_a_mix(migrated_engine, migrated_db_params):
    first, second = generate_university("small", seed=1), generate_university("small", seed=2)
    terms_first, terms_second = all_terms(first), all_terms(second)
    with canvas_sandbox(first, udw_db=None, inventory_db=migrated_db_params, term_ids=terms_first) as box:
        run_course_inventory(box.env, engine=migrated_engine)
    old = counts(migrated_engine)
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add(counts(migrated_engine))

    watcher = threading.Thread(target=watch)
    with canvas_sandbox(second, udw_db=None, inventory_db=migrated_db_params, term_ids=terms_second) as box:
        watcher.start()
        try:   # another university, not the next day: course ids shared by chance must not keep stored dates
            run_course_inventory({**box.env, "REUSE_PUBLISHED_DATES": False}, engine=migrated_engine)
        finally:
            stop.set()
            watcher.join()
    new = counts(migrated_engine)
    assert old != new and len(seen) >= 1
    assert seen <= {old, new}
    assert_matches_expected(migrated_engine, second, terms_second)


def test_csv_copies_when_asked(university, migrated_engine, migrated_db_params, tmp_path):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms) as box:
        env = {**box.env, "CREATE_CSVS": True}
        run_course_inventory(env, engine=migrated_engine, data_dir=tmp_path)
    expected = expected_inventory(university, terms)
    for table in TABLES:
        lines = (tmp_path / f"{table}.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(expected[table]) + 1
    assert "None" not in (tmp_path / "course.csv").read_text(encoding="utf-8")
