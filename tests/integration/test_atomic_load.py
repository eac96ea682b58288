"""A load killed half-way (the process dies mid-transaction) leaves the previous data complete."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from db.loader import replace_tables

ROOT = Path(__file__).resolve().parents[2]
LOADER = """
import json, sys
import pandas as pd
from db.engine import create_inventory_engine
from db.loader import replace_tables
params = json.loads(sys.argv[1])
rows = 400_000
term = pd.DataFrame([{"canvas_id": 1, "name": "New", "sis_id": None, "start_at": None, "end_at": None}])
account = pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "A"}])
course = pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "C", "account_id": 1, "term_id": 1,
                        "created_at": None, "published_at": None, "workflow_state": "available"}])
section = pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "S"}])
enrollment = pd.DataFrame({"canvas_id": range(1, rows + 1), "course_id": 1, "course_section_id": 1,
                           "user_id": range(1, rows + 1), "workflow_state": "active", "role_type": "StudentEnrollment"})
replace_tables(create_inventory_engine(params), {"term": term, "account": account, "course": course,
                                                 "course_section": section, "enrollment": enrollment})
"""


def snapshot(engine):
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM `{t}`")).scalar()
                for t in ("term", "account", "course", "course_section", "enrollment")}


def load_in_progress(engine, statement="LOAD DATA%"):
    """Statements of this database's other connections that match (e.g. the enrollment bulk load)."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() "
            "AND id <> CONNECTION_ID() AND info LIKE :statement"), {"statement": statement}).scalar()


def test_killed_load_leaves_previous_data(migrated_engine, migrated_db_params):
    replace_tables(migrated_engine, {
        "term": pd.DataFrame([{"canvas_id": 7, "name": "Old", "sis_id": "1", "start_at": None, "end_at": None}]),
        "account": pd.DataFrame([{"canvas_id": 2, "sis_id": None, "name": "Old account"}]),
        "course": pd.DataFrame([{"canvas_id": 3, "sis_id": None, "name": "Old course", "account_id": 2, "term_id": 7,
                                 "created_at": None, "published_at": None, "workflow_state": "available"}]),
        "course_section": pd.DataFrame([{"canvas_id": 4, "sis_id": None, "name": "Old section"}]),
        "enrollment": pd.DataFrame([{"canvas_id": 5, "course_id": 3, "course_section_id": 4, "user_id": 6,
                                     "workflow_state": "active", "role_type": "StudentEnrollment"}]),
    })
    before = snapshot(migrated_engine)
    process = subprocess.Popen([sys.executable, "-c", LOADER, json.dumps(migrated_db_params)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not load_in_progress(migrated_engine):  # well inside the enrollment load
            assert process.poll() is None, "the load finished before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert snapshot(migrated_engine) == before  # readers meanwhile see the old data
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while load_in_progress(migrated_engine, "%") and time.monotonic() < deadline:  # server rolls back
        time.sleep(0.1)
    assert snapshot(migrated_engine) == before
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM course")).scalar() == "Old course"
