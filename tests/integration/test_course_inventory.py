"""COURSE_INVENTORY end to end: simulated Canvas + gateway, real PostgreSQL UDW, real MariaDB."""

import dataclasses
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from clients.canvas import CanvasClient, CanvasSettings
from clients.http import Timeouts
from clients.retry import RetryPolicy
from course_inventory.inventory import TABLES, run_course_inventory
from sandbox.expected import TABLE_COLUMNS, expected_inventory, rows_as_sorted_tuples
from sandbox.faults import FaultOptions
from sandbox.generator import generate_university
from sandbox.httpserver import ServerOptions
from sandbox.throttle import ThrottleOptions
from sandbox.university import University
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


def assert_matches_expected(engine, university, term_ids):
    expected = expected_inventory(university, term_ids)
    for table in TABLES:
        want = rows_as_sorted_tuples(expected[table], TABLE_COLUMNS[table])
        got = loaded(engine, table)
        assert got == want, f"{table}: {len(got)} rows loaded, {len(want)} expected"


def counts(engine):
    with engine.connect() as conn:  # one transaction: a consistent snapshot of all six tables
        return tuple(conn.execute(sa.text(f"SELECT COUNT(*) FROM `{t}`")).scalar() for t in TABLES)


def test_inventory_equals_expected_row_for_row(university, udw_db_params, migrated_engine, migrated_db_params):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms) as box:
        statuses = run_course_inventory(box.env, engine=migrated_engine)
    assert_matches_expected(migrated_engine, university, terms)
    assert [s.data_source_name for s in statuses] == [ValidDataSourceName.CANVAS_API,
                                                      ValidDataSourceName.UNIZIN_DATA_WAREHOUSE]
    assert statuses[1].data_updated_at == university.canvasdatadate.astimezone(UTC)
    assert statuses[0].data_updated_at <= datetime.now(UTC)


@pytest.mark.parametrize("throttle_status", [429, 403])
def test_same_rows_with_faults_and_throttling(university, udw_db_params, migrated_engine, migrated_db_params,
                                              throttle_status):
    terms = all_terms(university)
    options = ServerOptions(
        seed=throttle_status,
        faults=FaultOptions(http500=0.03, http502_503=0.02, reset=0.02, bad_json=0.01, slow=0.005, slow_seconds=3),
        # A small bucket so the test run really gets throttled.
        throttle=ThrottleOptions(enabled=True, status=throttle_status, hwm=1.0, up_front=0.5, leak=1.0),
    )
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms,
                        options=options, attempts=6) as box:
        settings = CanvasSettings.from_env(box.env, timeouts=Timeouts(connect=2, read=1.0))
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


def test_failed_load_keeps_previous_data(university, udw_db_params, migrated_engine, migrated_db_params):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms) as box:
        run_course_inventory(box.env, engine=migrated_engine)
    broken = with_overlong_course_name(university)
    with canvas_sandbox(broken, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms) as box:
        with pytest.raises(JobError, match="previous data kept.*Data too long for column 'name'"):
            run_course_inventory(box.env, engine=migrated_engine)
    assert_matches_expected(migrated_engine, university, terms)


def test_source_failure_keeps_previous_data(university, udw_db_params, migrated_engine, migrated_db_params):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms) as box:
        run_course_inventory(box.env, engine=migrated_engine)
    broken = ServerOptions(faults=FaultOptions(http500=1.0, max_consecutive=1000))
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms,
                        options=broken, attempts=2) as box:
        settings = CanvasSettings.from_env(box.env)
        with CanvasClient(settings, policy=RetryPolicy(max_attempts=2, backoff_initial=0.01)) as canvas:
            with pytest.raises(JobError, match="500"):
                run_course_inventory(box.env, engine=migrated_engine, canvas=canvas)
    assert_matches_expected(migrated_engine, university, terms)


def test_readers_see_old_or_new_data_never_a_mix(udw_db_params, migrated_engine, migrated_db_params):
    first, second = generate_university("small", seed=1), generate_university("small", seed=2)
    terms_first, terms_second = all_terms(first), all_terms(second)
    with canvas_sandbox(first, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms_first) as box:
        run_course_inventory(box.env, engine=migrated_engine)
    old = counts(migrated_engine)
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add(counts(migrated_engine))

    watcher = threading.Thread(target=watch)
    with canvas_sandbox(second, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms_second) as box:
        watcher.start()
        try:
            run_course_inventory(box.env, engine=migrated_engine)
        finally:
            stop.set()
            watcher.join()
    new = counts(migrated_engine)
    assert old != new and len(seen) >= 1
    assert seen <= {old, new}
    assert_matches_expected(migrated_engine, second, terms_second)


def test_csv_copies_when_asked(university, udw_db_params, migrated_engine, migrated_db_params, tmp_path):
    terms = all_terms(university)
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms) as box:
        env = {**box.env, "CREATE_CSVS": True}
        run_course_inventory(env, engine=migrated_engine, data_dir=tmp_path)
    expected = expected_inventory(university, terms)
    for table in TABLES:
        lines = (tmp_path / f"{table}.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(expected[table]) + 1
    assert "None" not in (tmp_path / "course.csv").read_text(encoding="utf-8")
