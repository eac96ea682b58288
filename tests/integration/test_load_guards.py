"""Shrinking replacements are refused; appends tolerate rows already there; interrupted loads roll back."""

import signal
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from db.loader import LoadPolicy, merge_rows, replace_tables, with_load_policy
from db.schema_migrations import apply_migrations, migration_ids
from vocab import JobInterrupted, LoadError

HOURLY = "mivideo_media_started_hourly"


def terms(ids):
    return pd.DataFrame([{"canvas_id": i, "name": f"T{i}", "sis_id": None, "start_at": None, "end_at": None}
                         for i in ids])


def accounts(ids):
    return pd.DataFrame([{"canvas_id": i, "sis_id": None, "name": f"A{i}"} for i in ids])


def content(engine, table, key="canvas_id"):
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT {key} FROM `{table}` ORDER BY {key}")).scalars().all()


def test_a_snapshot_below_half_of_the_table_is_refused_and_nothing_changes(migrated_engine):
    replace_tables(migrated_engine, {"term": terms(range(1, 11)), "account": accounts(range(1, 5))})
    with pytest.raises(LoadError) as info:
        replace_tables(migrated_engine, {"term": terms(range(1, 5)), "account": accounts(range(1, 9))})
    message = str(info.value)
    assert "refusing to shrink term from 10 to 4 rows" in message and "\n" not in message
    assert content(migrated_engine, "term") == list(range(1, 11))          # the whole replacement was refused
    assert content(migrated_engine, "account") == list(range(1, 5))
    replace_tables(migrated_engine, {"term": terms(range(1, 6))})           # exactly half is accepted
    assert content(migrated_engine, "term") == list(range(1, 6))


def test_an_empty_snapshot_never_replaces_rows(migrated_engine):
    replace_tables(migrated_engine, {"term": terms([1])})
    with pytest.raises(LoadError, match="refusing to empty term: the new snapshot has 0 rows, the table has 1"):
        replace_tables(migrated_engine, {"term": terms([])})
    assert content(migrated_engine, "term") == [1]


def test_first_load_and_intended_shrinks_are_accepted(migrated_engine):
    replace_tables(migrated_engine, {"term": terms(range(1, 11))})               # an empty table takes anything
    lenient = with_load_policy(migrated_engine, LoadPolicy(min_share=0.2))
    replace_tables(lenient, {"term": terms(range(1, 3))})                         # 2 of 10: above 20 %
    allowed = with_load_policy(migrated_engine, LoadPolicy(allow_shrink=True))
    replace_tables(allowed, {"term": terms([])})
    assert content(migrated_engine, "term") == []


def hourly(rows):
    return pd.DataFrame([{"event_hour_utc": h, "course_id": c, "event_time_utc_latest": pd.Timestamp(t),
                          "event_count": n} for h, c, t, n in rows])


def test_merge_keeps_one_row_per_hour_and_course_with_the_greater_values(migrated_engine):
    first = merge_rows(migrated_engine, HOURLY, hourly([("2020-04-01 10:00", 7, "2020-04-01 10:40", 5),
                                                        ("2020-04-01 10:00", 8, "2020-04-01 10:50", 3)]),
                       greatest=("event_count", "event_time_utc_latest"))
    again = merge_rows(migrated_engine, HOURLY, hourly([("2020-04-01 10:00", 7, "2020-04-01 10:55", 6),   # grew
                                                        ("2020-04-01 10:00", 8, "2020-04-01 10:20", 2),   # lower
                                                        ("2020-04-01 11:00", 7, "2020-04-01 11:05", 1)]),
                       greatest=("event_count", "event_time_utc_latest"))
    assert (first.inserted, first.refreshed, again.inserted, again.refreshed) == (2, 0, 1, 1)
    with migrated_engine.connect() as conn:
        stored = conn.execute(sa.text(f"SELECT event_hour_utc, course_id, event_time_utc_latest, event_count "
                                      f"FROM {HOURLY} ORDER BY event_hour_utc, course_id")).all()
    assert [tuple(map(str, row)) for row in stored] == [
        ("2020-04-01 10:00", "7", "2020-04-01 10:55:00", "6"), ("2020-04-01 10:00", "8", "2020-04-01 10:50:00", "3"),
        ("2020-04-01 11:00", "7", "2020-04-01 11:05:00", "1")]


def test_migration_removes_duplicates_of_earlier_overlapping_runs(inventory_db_params):
    before = [m for m in migration_ids() if m < "0024"]
    apply_migrations(inventory_db_params, only=set(before))
    rows = [  # (id, hour, course, latest, count): what two overlapping appends of the original tool left
        (1, "2020-04-01 10:00", 7, "2020-04-01 10:40:00", 5), (2, "2020-04-01 10:00", 7, "2020-04-01 10:41:00", 6),
        (3, "2020-04-01 10:00", 7, "2020-04-01 10:41:00", 6), (4, "2020-04-01 10:00", 8, "2020-04-01 10:30:00", 2),
        (5, "2020-04-01 11:00", 7, "2020-04-01 11:59:00", 4), (6, "2020-04-01 11:00", 7, "2020-04-01 11:30:00", 4),
    ]
    engine = sa.create_engine(f"mysql+pymysql://{inventory_db_params['user']}@{inventory_db_params['host']}:"
                              f"{inventory_db_params['port']}/{inventory_db_params['dbname']}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {HOURLY} (id, event_hour_utc, course_id, event_time_utc_latest, "
                             "event_count) VALUES (:i, :h, :c, :t, :n)"),
                     [dict(zip("ihctn", row, strict=True)) for row in rows])
    apply_migrations(inventory_db_params)
    # Expected from the rule, independently: per key, the greatest (count, latest time, id).
    best = {}
    for row in rows:
        key = (row[1], row[2])
        if key not in best or (row[4], row[3], row[0]) > (best[key][4], best[key][3], best[key][0]):
            best[key] = row
    with engine.connect() as conn:
        kept = sorted(conn.execute(sa.text(f"SELECT id FROM {HOURLY}")).scalars().all())
        assert kept == sorted(row[0] for row in best.values()) == [3, 4, 5]
        with pytest.raises(sa.exc.IntegrityError):       # and the unique key keeps it so
            conn.execute(sa.text(f"INSERT INTO {HOURLY} (event_hour_utc, course_id, event_time_utc_latest, "
                                 "event_count) VALUES ('2020-04-01 10:00', 8, '2020-04-01 10:31:00', 9)"))
    engine.dispose()


class _Stop(JobInterrupted):
    pass


def _raise_stop(signum, frame):
    raise _Stop("test interruption")


def test_an_interrupted_load_rolls_back_and_leaves_a_usable_engine(migrated_engine):
    replace_tables(migrated_engine, {"term": terms([1]), "account": accounts([1])})
    sections = pd.DataFrame({"canvas_id": range(1, 300_001), "sis_id": None, "name": "S"})
    previous = signal.signal(signal.SIGALRM, _raise_stop)
    started = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.4)     # well inside the 300,000-row load
        with pytest.raises(_Stop):
            replace_tables(migrated_engine, {"term": terms([2]), "course_section": sections})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 20
    while content(migrated_engine, "term") != [1] and time.monotonic() < deadline:
        time.sleep(0.1)                               # the server rolls back the dropped connection's work
    assert content(migrated_engine, "term") == [1]
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM course_section")).scalar() == 0
