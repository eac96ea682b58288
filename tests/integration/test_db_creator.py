import logging

import pandas as pd
import sqlalchemy as sa

from db.db_creator import DBCreator
from db.loader import insert_new_rows, replace_tables, table_counts

APP_TABLES = ["account", "canvas_course_usage", "course", "course_section", "data_source_status", "enrollment",
              "job_run", "job_run_log", "mivideo_media_courses", "mivideo_media_created",
              "mivideo_media_started_hourly", "term", "zoom_course", "zoom_course_meeting"]


def seed(engine):
    replace_tables(engine, {
        "term": pd.DataFrame([{"canvas_id": 1, "name": "Fall", "sis_id": "2310", "start_at": None, "end_at": None}]),
        "account": pd.DataFrame([{"canvas_id": 2, "sis_id": None, "name": "Dept"}]),
        "course": pd.DataFrame([{"canvas_id": 3, "sis_id": None, "name": "C", "account_id": 2, "term_id": 1,
                                 "created_at": None, "published_at": None, "workflow_state": "available"}]),
    })
    insert_new_rows(engine, "mivideo_media_created", pd.DataFrame(
        [{"id": "1_a", "created_at": pd.Timestamp("2020-01-01"), "name": "m", "duration": 3}]))


def test_migrate_reset_and_table_names(inventory_db_params):
    creator = DBCreator(inventory_db_params)
    assert creator.migrate() is creator
    assert creator.get_table_names() == APP_TABLES  # yoyo's own tables are not listed
    assert creator.db_name == inventory_db_params["dbname"]
    seed(creator.engine)
    assert creator.reset_database() is creator
    assert set(table_counts(creator.engine, APP_TABLES).values()) == {0}
    with creator.engine.connect() as conn:  # yoyo's bookkeeping survives a reset
        assert conn.execute(sa.text("SELECT COUNT(*) FROM _yoyo_migration")).scalar() > 0


def test_drop_records_of_named_tables_ignores_unknown(inventory_db_params, caplog):
    creator = DBCreator(inventory_db_params).migrate()
    seed(creator.engine)
    with caplog.at_level(logging.ERROR):
        assert creator.drop_records(["mivideo_media_created", "_yoyo_migration", "nope"]) is creator
    counts = table_counts(creator.engine, ["mivideo_media_created", "course", "_yoyo_migration"])
    assert counts["mivideo_media_created"] == 0 and counts["course"] == 1 and counts["_yoyo_migration"] > 0
    assert "nope" in caplog.text and "_yoyo_migration" in caplog.text


def test_insert_new_rows_is_idempotent(migrated_engine):
    rows = pd.DataFrame([{"id": f"1_{i}", "created_at": pd.Timestamp("2020-01-01"), "name": "é", "duration": i}
                         for i in range(3)])
    assert insert_new_rows(migrated_engine, "mivideo_media_created", rows) == 3
    assert insert_new_rows(migrated_engine, "mivideo_media_created", rows) == 0
    more = pd.concat([rows, pd.DataFrame([{"id": "1_9", "created_at": pd.Timestamp("2020-01-02"), "name": "n",
                                           "duration": 9}])])
    assert insert_new_rows(migrated_engine, "mivideo_media_created", more) == 1
