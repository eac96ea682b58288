"""run_jobs.py end to end with small real jobs, a real MariaDB and real configuration files."""

import gc
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import run_jobs
from db.availability import wait_for_database
from db.job_runs import record_job_run
from db.schema_migrations import migration_ids
from tests import jobs_for_tests
from tests.conftest import valid_config, write_config
from vocab import DatabaseUnavailableError, DataSourceStatus, ValidDataSourceName

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = {
    "COURSE_INVENTORY": "tests.jobs_for_tests.succeeding_job",
    "MIVIDEO": "tests.jobs_for_tests.kaltura_job",
    "CANVAS_ZOOM_MEETINGS": "tests.jobs_for_tests.failing_job",
    "CRASHER": "tests.jobs_for_tests.crashing_job",
    "CARELESS": "tests.jobs_for_tests.careless_job",
    "HEAP": "tests.jobs_for_tests.heap_probe_job",
    "REPORTING": "tests.jobs_for_tests.reporting_job",
    "SWALLOWING": "tests.jobs_for_tests.swallowing_job",
}


@pytest.fixture
def config_dir(tmp_path, inventory_db_params, monkeypatch):
    write_config(tmp_path, valid_config(inventory_db_params, JOB_NAMES=["course_inventory", "MIVIDEO"]))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    return tmp_path


def rows(params, sql):
    engine = sa.create_engine(f"mysql+pymysql://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}")
    with engine.connect() as conn:
        result = conn.execute(sa.text(sql)).all()
    engine.dispose()
    return result


def test_jobs_run_in_order_and_are_recorded(config_dir, inventory_db_params):
    assert run_jobs.main([], registry=REGISTRY) == 0
    runs = rows(inventory_db_params, "SELECT id, job_name FROM job_run ORDER BY id")
    assert [name for _, name in runs] == ["COURSE_INVENTORY", "MIVIDEO"]
    statuses = rows(inventory_db_params, "SELECT data_source_name, data_updated_at, job_run_id FROM data_source_status")
    by_run = {run_id: sorted(name for name, _, rid in statuses if rid == run_id) for run_id, _ in runs}
    assert by_run == {runs[0][0]: ["CANVAS_API", "UNIZIN_DATA_WAREHOUSE"], runs[1][0]: ["KALTURA_API"]}
    assert (datetime(2020, 1, 15, 4, 12, 33) in {updated for _, updated, _ in statuses})


def test_each_job_starts_with_the_startup_heap_frozen(config_dir):
    thresholds = gc.get_threshold()
    gc.set_threshold(700, 10, 10)           # CPython's defaults (an earlier test may have run a job)
    jobs_for_tests.HEAP_STATES.clear()
    try:
        assert run_jobs.main(["--jobs", "HEAP"], registry=REGISTRY) == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    frozen, job_thresholds = jobs_for_tests.HEAP_STATES[0]
    assert frozen > 0                   # everything alive before the job is out of the collector's full passes
    assert job_thresholds[0] > 700      # and young objects are collected less often than by default


def test_a_failed_job_is_isolated_and_not_recorded(config_dir, inventory_db_params, caplog):
    code = run_jobs.main(["--jobs", "CANVAS_ZOOM_MEETINGS", "CRASHER", "MIVIDEO"], registry=REGISTRY)
    assert code == 1
    assert rows(inventory_db_params, "SELECT job_name FROM job_run") == [("MIVIDEO",)]
    assert "job CANVAS_ZOOM_MEETINGS failed" in caplog.text and "Canvas answered 503" in caplog.text
    assert "ZeroDivisionError" in caplog.text  # a bug keeps its traceback


def test_jobs_option_overrides_job_names_case_insensitively(config_dir, inventory_db_params):
    assert run_jobs.main(["--jobs", "mivideo"], registry=REGISTRY) == 0
    assert rows(inventory_db_params, "SELECT job_name FROM job_run") == [("MIVIDEO",)]


def test_unknown_job_on_the_command_line_is_a_usage_error(config_dir, capsys):
    with pytest.raises(SystemExit) as info:
        run_jobs.main(["--jobs", "GRADES"], registry=REGISTRY)
    assert info.value.code == 2 and "unknown job name(s): GRADES" in capsys.readouterr().err


def test_list_jobs_and_help():
    result = subprocess.run([sys.executable, "run_jobs.py", "--list-jobs"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert "COURSE_INVENTORY" in result.stdout and "online_meetings.canvas_zoom_meetings.main" in result.stdout
    help_text = subprocess.run([sys.executable, "run_jobs.py", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=60).stdout
    for option in ("--jobs", "--list-jobs", "--check-config", "--log-level"):
        assert option in help_text


def test_check_config_writes_nothing(tmp_path, inventory_db_params, monkeypatch, capsys):
    write_config(tmp_path, valid_config(inventory_db_params, JOB_NAMES=["HEAP"]))  # a job without sources
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    assert run_jobs.main(["--check-config"], registry=REGISTRY) == 0
    out = capsys.readouterr().out
    assert "configuration          ok: valid; jobs HEAP" in out
    assert f"inventory database     ok: root@127.0.0.1:3306/{inventory_db_params['dbname']}: " \
           f"{len(migration_ids())} pending migration(s)" in out
    assert rows(inventory_db_params, "SHOW TABLES") == []          # not migrated, nothing written


def test_check_config_says_when_the_database_does_not_exist(tmp_path, monkeypatch, capsys):
    params = {**valid_config()["INVENTORY_DB"], "dbname": "cit_never_created"}
    write_config(tmp_path, valid_config(params, JOB_NAMES=["HEAP"]))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    assert run_jobs.main(["--check-config"], registry=REGISTRY) == 0
    assert "the database does not exist yet (a run creates it)" in capsys.readouterr().out
    assert rows({**params, "dbname": "mysql"},
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'cit_never_created'") == [(0,)]


def test_unreachable_database_exits_2_with_a_clear_message(tmp_path, monkeypatch, caplog):
    params = {"host": "127.0.0.1", "port": "1", "dbname": "x", "user": "root", "password": "db-secret-pw"}
    write_config(tmp_path, valid_config(params))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    assert run_jobs.main([], registry=REGISTRY) == 2
    assert "cannot use the inventory database root@127.0.0.1:1/x" in caplog.text
    assert "db-secret-pw" not in caplog.text


def test_database_is_created_when_missing(tmp_path, monkeypatch, inventory_db_params):
    from sandbox.databases import drop_mysql_database
    drop_mysql_database(inventory_db_params)
    write_config(tmp_path, valid_config(inventory_db_params))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    assert run_jobs.main(["--jobs", "MIVIDEO"], registry=REGISTRY) == 0


def test_wait_for_database_gives_up_after_the_timeout():
    waits = []
    params = {"host": "127.0.0.1", "port": "1", "dbname": "x", "user": "root", "password": ""}
    with pytest.raises(DatabaseUnavailableError, match="did not become available within 7s"):
        wait_for_database(params, timeout=7, interval=3, sleep=waits.append)
    assert waits and set(waits) == {3}


def test_concurrent_recordings_link_statuses_to_their_own_run(migrated_engine):
    names = list(ValidDataSourceName)

    def record(index):
        status = DataSourceStatus(names[index % len(names)])
        now = datetime.now(UTC)
        for _ in range(5):
            record_job_run(migrated_engine, f"JOB_{index % len(names)}", now, now, [status])

    threads = [threading.Thread(target=record, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with migrated_engine.connect() as conn:
        linked = conn.execute(sa.text(
            "SELECT j.job_name, s.data_source_name FROM data_source_status s JOIN job_run j ON j.id = s.job_run_id"
        )).all()
    assert len(linked) == 50
    assert all(job == f"JOB_{names.index(ValidDataSourceName[source])}" for job, source in linked)


def test_secrets_never_reach_the_output_even_at_debug(tmp_path, inventory_db_params):
    secrets = {"CANVAS_TOKEN": "tok-7f3e9c1d2b", "API_CLIENT_SECRET": "gw-secret-91ab77",
               "kaltura_user_secret": "kal-secret-55aa0e"}
    config = valid_config(inventory_db_params, LOG_LEVEL="DEBUG", JOB_NAMES=["COURSE_INVENTORY"])
    config["CANVAS"].update({k: v for k, v in secrets.items() if k != "kaltura_user_secret"})
    config["MIVIDEO"]["kaltura_user_secret"] = secrets["kaltura_user_secret"]
    config["UDW"]["password"] = "udw-pass-3c3c3c"
    write_config(tmp_path, config)
    script = ("import sys, run_jobs; sys.exit(run_jobs.main(['--jobs', 'CARELESS', 'COURSE_INVENTORY'], "
              f"registry={REGISTRY!r}))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "job CARELESS failed" in output and "DEBUG" in output  # it really ran at DEBUG
    for secret in [*secrets.values(), "udw-pass-3c3c3c"]:
        assert secret not in output


# ---- every attempt on record, shrink guard, deadline, unknown names ----

def log_rows(params):
    return rows(params, "SELECT job_name, status, reason, rows_loaded, requests, retries, throttled, job_run_id, "
                        "started_at <= finished_at, pid FROM job_run_log ORDER BY id")


def test_every_attempt_is_recorded_with_its_outcome(config_dir, inventory_db_params):
    code = run_jobs.main(["--jobs", "REPORTING", "CANVAS_ZOOM_MEETINGS", "CRASHER"], registry=REGISTRY)
    assert code == 1
    (ok, failed, crashed) = log_rows(inventory_db_params)
    job_run_ids = [row[0] for row in rows(inventory_db_params, "SELECT id FROM job_run")]
    assert ok[:8] == ("REPORTING", "succeeded", None, '{"term": 3}', 5, 1, 2, job_run_ids[0]) and ok[8] == 1
    assert ok[9] == os.getpid()
    assert failed[:3] == ("CANVAS_ZOOM_MEETINGS", "failed", "Canvas answered 503 for every page of courses")
    assert failed[7] is None and failed[3] == "{}"
    assert crashed[:3] == ("CRASHER", "failed", "crashed: ZeroDivisionError: division by zero")


def test_recorded_reasons_carry_no_secret(config_dir, inventory_db_params):
    assert run_jobs.main(["--jobs", "CARELESS"], registry=REGISTRY) == 1
    (row,) = log_rows(inventory_db_params)
    assert row[2] == "could not log in with [REDACTED]"


def test_a_shrinking_snapshot_fails_the_job_unless_allowed(config_dir, inventory_db_params, monkeypatch, caplog):
    monkeypatch.setenv("CIT_TEST_TERMS", "10")
    assert run_jobs.main(["--jobs", "REPORTING"], registry=REGISTRY) == 0
    monkeypatch.setenv("CIT_TEST_TERMS", "2")
    assert run_jobs.main(["--jobs", "REPORTING"], registry=REGISTRY) == 1
    assert "refusing to shrink term from 10 to 2 rows (below 50% of the current rows)" in caplog.text
    assert rows(inventory_db_params, "SELECT COUNT(*) FROM term") == [(10,)]
    assert run_jobs.main(["--jobs", "REPORTING", "--allow-shrink"], registry=REGISTRY) == 0
    assert rows(inventory_db_params, "SELECT COUNT(*) FROM term") == [(2,)]
    monkeypatch.setenv("CIT_TEST_TERMS", "0")
    monkeypatch.setenv("ALLOW_SHRINK", "true")
    assert run_jobs.main(["--jobs", "REPORTING"], registry=REGISTRY) == 0
    assert [status for _, status, *_ in log_rows(inventory_db_params)] == ["succeeded", "failed", "succeeded",
                                                                           "succeeded"]


def test_a_job_past_its_deadline_is_stopped_and_the_next_runs(config_dir, inventory_db_params, monkeypatch):
    monkeypatch.setenv("JOB_TIMEOUT_MINUTES", "0.02")
    started = time.monotonic()
    assert run_jobs.main(["--jobs", "SWALLOWING", "MIVIDEO"], registry=REGISTRY) == 1
    assert time.monotonic() - started < 15
    (late, next_job) = log_rows(inventory_db_params)
    assert late[:3] == ("SWALLOWING", "failed", "stopped after exceeding JOB_TIMEOUT_MINUTES (0.02 min)")
    assert next_job[:2] == ("MIVIDEO", "succeeded")


def test_unknown_job_names_are_skipped_and_the_others_run(config_dir, inventory_db_params, monkeypatch, caplog):
    monkeypatch.setenv("JOB_NAMES", '["MIVIDEO", "MIVIDOE", "GRADES"]')
    assert run_jobs.main([], registry=REGISTRY) == 1
    assert "unknown job name MIVIDOE in JOB_NAMES (did you mean MIVIDEO? known:" in caplog.text
    assert "unknown job name GRADES in JOB_NAMES (known:" in caplog.text
    assert rows(inventory_db_params, "SELECT job_name FROM job_run") == [("MIVIDEO",)]


def test_strict_refuses_unknown_keys(tmp_path, inventory_db_params, monkeypatch, caplog):
    write_config(tmp_path, valid_config(inventory_db_params, CREATE_CSV=True))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    assert run_jobs.main(["--strict", "--jobs", "MIVIDEO"], registry=REGISTRY) == 2
    assert "CREATE_CSV: unknown key (did you mean CREATE_CSVS?)" in caplog.text
    assert run_jobs.main(["--jobs", "MIVIDEO"], registry=REGISTRY) == 0


def test_a_database_that_accepts_and_then_stays_silent_exits_2(tmp_path, inventory_db_params, monkeypatch, caplog):
    from tests.helpers.tcp_proxy import StallingProxy
    proxy = StallingProxy((inventory_db_params["host"], int(inventory_db_params["port"])), stall_after=0).start()
    try:
        params = {**inventory_db_params, "port": str(proxy.port), "timeout_seconds": 1}
        write_config(tmp_path, valid_config(params))
        monkeypatch.setenv("ENV_DIR", str(tmp_path))
        started = time.monotonic()
        assert run_jobs.main(["--jobs", "MIVIDEO"], registry=REGISTRY) == 2
        assert time.monotonic() - started < 10
    finally:
        proxy.close()
    assert "cannot use the inventory database" in caplog.text and "timed out" in caplog.text


def test_a_user_without_create_gets_the_missing_privilege_at_once(tmp_path, inventory_db_params, monkeypatch,
                                                                   caplog):
    from sandbox.databases import mysql_admin
    admin = mysql_admin()
    user = "nc_" + inventory_db_params["dbname"][-10:]
    with admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'nc-pass-77x'")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{inventory_db_params['dbname']}`.* TO '{user}'@'%'")
    try:
        write_config(tmp_path, valid_config({**inventory_db_params, "user": user, "password": "nc-pass-77x"}))
        monkeypatch.setenv("ENV_DIR", str(tmp_path))
        started = time.monotonic()
        assert run_jobs.main(["--jobs", "MIVIDEO"], registry=REGISTRY) == 2
        assert time.monotonic() - started < 10
    finally:
        admin = mysql_admin()
        with admin, admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "lacks a privilege: CREATE command denied" in errors[0]
    assert "nc-pass-77x" not in caplog.text


def test_the_readme_queries_give_the_last_good_run_and_the_failures(config_dir, inventory_db_params):
    run_jobs.main(["--jobs", "REPORTING", "CANVAS_ZOOM_MEETINGS"], registry=REGISTRY)
    run_jobs.main(["--jobs", "REPORTING"], registry=REGISTRY)
    readme = (ROOT / "README.md").read_text()
    block = readme.split("**`job_run_log`**", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    last_good, failures = [query.strip() for query in block.split(";") if query.strip()]
    log = rows(inventory_db_params, "SELECT job_name, status, finished_at, reason FROM job_run_log ORDER BY id")
    assert rows(inventory_db_params, last_good) == [("REPORTING", log[2][2])]
    assert [tuple(row[:2]) + (row[4],) for row in rows(inventory_db_params, failures)] == [
        ("CANVAS_ZOOM_MEETINGS", "failed", "Canvas answered 503 for every page of courses")]


def test_check_config_fails_on_an_unknown_job_name(tmp_path, inventory_db_params, monkeypatch, capsys):
    write_config(tmp_path, valid_config(inventory_db_params, JOB_NAMES=["HEAP", "HAEP"]))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    assert run_jobs.main(["--check-config"], registry=REGISTRY) == 2
    assert "configuration          FAILED: JOB_NAMES has unknown job name(s) HAEP" in capsys.readouterr().out
