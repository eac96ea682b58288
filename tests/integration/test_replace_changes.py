"""A replacement over stored rows writes only the changes, and leaves exactly what a full reload would."""

import random
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from db.loader import TableChanges, _changes, _plan, frame_to_rows, replace_tables, table_changes
from vocab import LoadError

COLUMNS = {
    "term": ["canvas_id", "name", "sis_id", "start_at", "end_at"],
    "account": ["canvas_id", "sis_id", "name"],
    "course": ["canvas_id", "sis_id", "name", "account_id", "term_id", "created_at", "published_at", "workflow_state"],
    "course_section": ["canvas_id", "sis_id", "name"],
    "enrollment": ["canvas_id", "course_id", "course_section_id", "user_id", "workflow_state", "role_type"],
    "canvas_course_usage": ["course_id", "views", "participations", "date"],
}


def snapshot(rng: random.Random, courses: int = 300, enrollments: int = 12_000) -> dict[str, pd.DataFrame]:
    base = datetime(2026, 8, 20, 12, 0, 0)
    course_rows = [{"canvas_id": c, "sis_id": rng.choice([None, f"SIS{c}"]), "name": f"Cours {c} — é",
                    "account_id": 1 + c % 3, "term_id": 7,
                    "created_at": base - timedelta(days=c % 40), "published_at": rng.choice([None, base]),
                    "workflow_state": rng.choice(["available", "unpublished"])} for c in range(1, courses + 1)]
    return {
        "term": pd.DataFrame([{"canvas_id": 7, "name": "Fall", "sis_id": None, "start_at": base, "end_at": None}]),
        "account": pd.DataFrame([{"canvas_id": a, "sis_id": None, "name": f"A{a}"} for a in (1, 2, 3)]),
        "course": pd.DataFrame(course_rows),
        "course_section": pd.DataFrame([{"canvas_id": s, "sis_id": f"S{s}", "name": f"Section {s}"}
                                        for s in range(1, 2 * courses + 1)]),
        "enrollment": pd.DataFrame({"canvas_id": range(1, enrollments + 1),
                                    "course_id": [1 + i % courses for i in range(enrollments)],
                                    "course_section_id": [1 + i % (2 * courses) for i in range(enrollments)],
                                    "user_id": [rng.randrange(1, 5_000) for _ in range(enrollments)],
                                    "workflow_state": "active", "role_type": "StudentEnrollment"}),
        "canvas_course_usage": pd.DataFrame({"course_id": [1 + i % courses for i in range(900)], "views": 3,
                                             "participations": 1, "date": [date(2026, 9, 1 + i // courses)
                                                                           for i in range(900)]}),
    }


def next_day(old: dict[str, pd.DataFrame], rng: random.Random, share: float, renamed_sections: int
             ) -> dict[str, pd.DataFrame]:
    """`share` of the enrollments changed or dropped, new ones added, some courses and sections renamed."""
    new = {table: df.copy() for table, df in old.items()}
    enrollment = new["enrollment"]
    touched = rng.sample(range(len(enrollment)), int(share * len(enrollment)))
    dropped, changed = touched[: len(touched) // 3], touched[len(touched) // 3:]
    enrollment.loc[changed, "workflow_state"] = "completed"
    enrollment = enrollment.drop(index=dropped)
    added = enrollment.head(500).assign(canvas_id=lambda df: df["canvas_id"] + 1_000_000)
    new["enrollment"] = pd.concat([enrollment, added], ignore_index=True)
    course = new["course"]
    course.loc[:20, "name"] = course.loc[:20, "name"] + " (renamed)"
    course.loc[21:40, "published_at"] = None
    course.loc[41:60, "sis_id"] = "NEW"
    section = new["course_section"]
    section.loc[: renamed_sections - 1, "name"] = section.loc[: renamed_sections - 1, "name"].str.upper()
    new["canvas_course_usage"] = new["canvas_course_usage"].assign(views=4)
    return new


def stored(engine: sa.Engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        names = ", ".join(f"`{c}`" for c in COLUMNS[table])
        return sorted(tuple(row) for row in conn.exec_driver_sql(f"SELECT {names} FROM `{table}`"))


# Synced enrollments; most of them changed (reloaded); every section renamed (reloaded: its children too).
@pytest.mark.parametrize(("share", "renamed_sections", "synced"), [(0.1, 50, True), (0.9, 50, False),
                                                                   (0.1, 600, False)])
def test_a_replacement_over_stored_rows_leaves_exactly_the_new_snapshot(migrated_engine, share, renamed_sections,
                                                                        synced):
    rng = random.Random(share)
    old = snapshot(rng)
    replace_tables(migrated_engine, old)
    new = next_day(old, rng, share, renamed_sections)
    with migrated_engine.connect() as conn:
        plan = _plan(conn, new, dict.fromkeys(new, 1))
    assert (plan["enrollment"] is not None) == synced
    if synced:
        changes = plan["enrollment"]
        assert isinstance(changes, TableChanges) and changes.key == "canvas_id"
        assert len(changes.stale_keys) == int(share * 12_000) // 3
        assert len(changes.rows) == int(share * 12_000) - int(share * 12_000) // 3 + 500
    assert replace_tables(migrated_engine, new) == {table: len(df) for table, df in new.items()}
    for table, df in new.items():
        assert stored(migrated_engine, table) == sorted(frame_to_rows(df[COLUMNS[table]])), table


def test_a_synced_snapshot_that_would_lose_rows_is_refused_and_the_previous_data_kept(migrated_engine):
    old = snapshot(random.Random(5))
    replace_tables(migrated_engine, old)
    new = {table: df.copy() for table, df in old.items()}
    new["course_section"] = new["course_section"][new["course_section"]["canvas_id"] != 1]   # still referred to
    with pytest.raises(LoadError, match="enrollment would hold"):
        replace_tables(migrated_engine, new)
    for table, df in old.items():
        assert stored(migrated_engine, table) == sorted(frame_to_rows(df[COLUMNS[table]])), table


def test_only_a_table_with_a_usable_key_is_synced(migrated_engine):
    old = snapshot(random.Random(3))
    replace_tables(migrated_engine, old)
    with migrated_engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert _changes(conn, inspector, "canvas_course_usage", old["canvas_course_usage"]) is None   # auto id
        assert _changes(conn, inspector, "course", old["course"]) == TableChanges("canvas_id", [], [])


def test_table_changes_compare_every_column():
    stored_rows = [(1, "a", None), (2, "b", 5), (3, "c", 6)]
    new_rows = [(1, "a", None), (2, "b", None), (4, "d", 7)]
    assert table_changes(stored_rows, new_rows, 0) == ([3], [(2, "b", None), (4, "d", 7)])
    assert table_changes([], new_rows, 0) == ([], new_rows)
    assert table_changes(stored_rows, [], 0) == ([1, 2, 3], [])
