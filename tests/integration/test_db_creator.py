"""DBCreator's documented methods, and create_db.py, which must never empty a database by accident."""

import io
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import create_db
from db.db_creator import DBCreator
from db.loader import insert_new_rows, replace_tables, table_counts
from tests.conftest import valid_config, write_config

ROOT = Path(__file__).resolve().parents[2]

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


# ---- create_db.py cannot destroy data by accident ----


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def seeded(tmp_path, inventory_db_params, monkeypatch):
    creator = DBCreator(inventory_db_params).migrate()
    seed(creator.engine)
    write_config(tmp_path, valid_config({**inventory_db_params, "password": ""}))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    yield creator, tmp_path
    creator.engine.dispose()


def counts(creator):
    return {t: n for t, n in table_counts(creator.engine, APP_TABLES).items() if n}


def test_help_changes_nothing(seeded):
    creator, config_dir = seeded
    result = subprocess.run([sys.executable, "create_db.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={"ENV_DIR": str(config_dir), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and "usage: create_db.py" in result.stdout and "--yes" in result.stdout
    assert counts(creator) == {"term": 1, "account": 1, "course": 1, "mivideo_media_created": 1}


def test_without_yes_and_without_a_terminal_it_says_what_and_changes_nothing(seeded):
    creator, config_dir = seeded
    result = subprocess.run([sys.executable, "create_db.py"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, env={"ENV_DIR": str(config_dir), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    params = creator.db_params
    assert (f"this would DELETE 4 row(s) from {len(APP_TABLES)} table(s) of "
            f"{params['user']}@{params['host']}:{params['port']}/{params['dbname']}") in result.stdout
    assert "term" in result.stdout and "nothing changed: no terminal to confirm on" in result.stdout
    assert counts(creator) == {"term": 1, "account": 1, "course": 1, "mivideo_media_created": 1}


@pytest.mark.parametrize(("answer", "code"), [("no\n", 1), ("YES please\n", 1), ("", 1), ("yes\n", 0)])
def test_on_a_terminal_only_yes_empties(seeded, answer, code):
    creator, _ = seeded
    out = io.StringIO()
    assert create_db.main([], stdin=Terminal(answer), stdout=out) == code
    assert "type yes to continue" in out.getvalue()
    expected = {} if code == 0 else {"term": 1, "account": 1, "course": 1, "mivideo_media_created": 1}
    assert counts(creator) == expected


def test_yes_empties_and_migrates(seeded):
    creator, _ = seeded
    assert create_db.main(["--yes"], stdin=io.StringIO(), stdout=io.StringIO()) == 0
    assert counts(creator) == {}


def test_a_missing_database_is_created_when_confirmed(tmp_path, inventory_db_params, monkeypatch):
    from sandbox.databases import drop_mysql_database
    drop_mysql_database(inventory_db_params)
    write_config(tmp_path, valid_config(inventory_db_params))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    out = io.StringIO()
    assert create_db.main([], stdin=io.StringIO(), stdout=out) == 1
    assert "does not exist: it would be created and migrated" in out.getvalue()
    assert create_db.main(["--yes"], stdin=io.StringIO(), stdout=io.StringIO()) == 0
    assert DBCreator(inventory_db_params).get_table_names() == APP_TABLES
