"""The migrations reproduce the original schema exactly, and an original database migrates forward."""

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from db.engine import create_inventory_engine
from db.loader import replace_tables
from db.schema_migrations import apply_migrations, migration_ids
from sandbox.databases import MYSQL
from tests.helpers.schema import describe_schema
from vocab import LoadError

# The dump of a database made by the original tool (see tests/fixtures/README.md).
REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "seed-era-schema.sql"
SEED_IDS = [
    "0001.init_inventory_db", "0002.add_col_published_date", "0003.created_date_datatype_change", "0004.add_sis_id",
    "0005.change_pks_to_canvas_id", "0006.modify_user", "0007.add_section_table", "0008.canvas_usage_table",
    "0009.add_meta_tables", "0010.add_fkc_course_usage_table", "0011.add_course_sis_ids",
    "0012.add_mivideo_usage_table", "0013.add_term_table", "0014.change_course_sis_id_data_type",
    "0015.extend_course_sis_id", "0016.add_mivideo_creation_tables", "0017.add_account_table",
    "0017.remove_user_table",
]


def load_reference_dump(db_params):
    args = ["mysql", f"-h{MYSQL['host']}", f"-P{MYSQL['port']}", f"-u{MYSQL['user']}", db_params["dbname"]]
    if MYSQL["password"]:
        args.insert(4, f"-p{MYSQL['password']}")
    subprocess.run(args, stdin=REFERENCE.open("rb"), check=True, timeout=120)


@pytest.fixture
def reference_engine():
    from sandbox.databases import create_mysql_database, drop_mysql_database
    params = create_mysql_database("ref")
    load_reference_dump(params)
    engine = create_inventory_engine(params)
    yield params, engine
    engine.dispose()
    drop_mysql_database(params)


def test_seed_era_migration_ids_are_kept():
    assert set(SEED_IDS) <= set(migration_ids())
    assert all(new > "0017.remove_user_table" for new in set(migration_ids()) - set(SEED_IDS))


def test_fresh_database_matches_reference_schema(inventory_db_params, reference_engine):
    applied = apply_migrations(inventory_db_params, only=set(SEED_IDS))
    assert sorted(applied) == sorted(SEED_IDS)
    mine = describe_schema(create_inventory_engine(inventory_db_params))
    reference = describe_schema(reference_engine[1])
    for aspect in ("tables", "columns", "indexes", "foreign_keys", "constraints"):
        assert mine[aspect] == reference[aspect], aspect
    assert len(mine["tables"]) == 11


def test_reference_database_migrates_forward(reference_engine):
    params, engine = reference_engine
    applied = apply_migrations(params)
    assert applied == [m for m in migration_ids() if m not in SEED_IDS] and applied
    assert apply_migrations(params) == []  # nothing left to do


def test_fixed_schema_takes_messy_real_data(migrated_engine):
    long_name = "Ünïcödé 🎓 course " * 13  # > 100 characters, non-ASCII, emoji
    frames = {
        "term": pd.DataFrame([{"canvas_id": 1, "name": "No SIS term", "sis_id": None, "start_at": None,
                               "end_at": None}]),
        "account": pd.DataFrame([{"canvas_id": 2, "sis_id": "UM_ANN-ARBOR", "name": "Dept"},
                                 {"canvas_id": 3, "sis_id": None, "name": "Dept"}]),
        "course": pd.DataFrame([{"canvas_id": c, "sis_id": None, "name": long_name[:255], "account_id": 2,
                                 "term_id": 1, "created_at": None, "published_at": None,
                                 "workflow_state": "available"} for c in (10, 11)]),
        "course_section": pd.DataFrame([{"canvas_id": 5, "sis_id": "SEC-0001-ÅÄÖ", "name": long_name[:255]}]),
    }
    replace_tables(migrated_engine, frames)
    with migrated_engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name FROM course ORDER BY canvas_id")).scalars().all()
        section_sis = conn.execute(sa.text("SELECT sis_id FROM course_section")).scalar()
    assert names == [long_name[:255]] * 2 and section_sis == "SEC-0001-ÅÄÖ"


def test_overlong_values_are_refused_not_truncated(migrated_engine):
    replace_tables(migrated_engine, {"term": pd.DataFrame([{"canvas_id": 1, "name": "Fall", "sis_id": "1",
                                                            "start_at": None, "end_at": None}])})
    too_long = pd.DataFrame([{"canvas_id": 2, "name": "x" * 300, "sis_id": None, "start_at": None, "end_at": None}])
    with pytest.raises(LoadError, match="Data too long for column 'name'"):
        replace_tables(migrated_engine, {"term": too_long})
    with migrated_engine.connect() as conn:  # the failed replacement left the previous data intact
        assert conn.execute(sa.text("SELECT canvas_id, name FROM term")).all() == [(1, "Fall")]


def test_test_fixture_copies_the_migrated_schema_exactly(migrated_engine, migrated_template):
    template = create_inventory_engine(migrated_template)
    assert describe_schema(migrated_engine, include_yoyo=True) == describe_schema(template, include_yoyo=True)
    template.dispose()
