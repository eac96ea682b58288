"""run_jobs.py --check-config against the whole sandbox: every source probed once, one line each, nothing written."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox.gateway import GatewayOptions
from sandbox.generator import generate_university
from sandbox.runner import Sandbox, SandboxOptions

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_SECRET = "gw-secret-preflight-41ab"
LABELS = ("configuration", "inventory database", "gateway token", "Canvas token", "UDW", "Kaltura session",
          "BigQuery credentials", "Zoom base URL")


@pytest.fixture(scope="module")
def university():
    return generate_university("small", seed=11)


def check(tmp_path, university, udw_db_params, inventory_db_params, **environment):
    options = SandboxOptions(seed=11, gateway=replace(GatewayOptions(), client_secret=GATEWAY_SECRET),
                             udw_db=udw_db_params, inventory_db=inventory_db_params, env_file=tmp_path / "env.hjson")
    with Sandbox(university, options) as sandbox:
        result = subprocess.run([sys.executable, "run_jobs.py", "--check-config"], cwd=ROOT, capture_output=True,
                                text=True, timeout=180,
                                env={"ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", **environment})
        secrets = [sandbox.config["CANVAS"]["CANVAS_TOKEN"], sandbox.config["MIVIDEO"]["kaltura_user_secret"],
                   GATEWAY_SECRET]
    assert "Traceback" not in result.stderr + result.stdout
    for secret in secrets:
        assert secret not in result.stdout + result.stderr
    return result.returncode, result.stdout.splitlines()


def tables(params):
    engine = sa.create_engine(f"mysql+pymysql://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}")
    with engine.connect() as conn:
        names = conn.execute(sa.text("SHOW TABLES")).scalars().all()
    engine.dispose()
    return names


def test_every_source_answers(tmp_path, university, udw_db_params, inventory_db_params):
    code, lines = check(tmp_path, university, udw_db_params, inventory_db_params)
    assert code == 0, lines
    assert [line.split(" ok: ")[0].strip() for line in lines[:-1]] == list(LABELS)
    assert lines[-1] == f"{len(LABELS)} of {len(LABELS)} checks passed"
    assert "pending migration(s), applied by the next run" in lines[1]
    assert "dry run of the hourly query" in lines[6]
    assert tables(inventory_db_params) == []       # listed, not applied; nothing written


def test_without_a_udw_its_check_passes_saying_so(tmp_path, university, inventory_db_params):
    code, lines = check(tmp_path, university, None, inventory_db_params)
    assert code == 0, lines
    assert "UDW                    ok: not configured (section SIS ids come from Canvas)" in lines


def test_each_broken_source_is_named_and_the_exit_is_2(tmp_path, university, udw_db_params, inventory_db_params):
    code, lines = check(tmp_path, university, udw_db_params, inventory_db_params,
                        CANVAS__CANVAS_TOKEN="not-the-token", MIVIDEO__kaltura_user_secret="wrong-kaltura-secret",
                        ZOOM__BASE_URL="http://127.0.0.1:9", UDW__dbname="no_such_udw")
    assert code == 2
    status = {line[:22].strip(): line[23:] for line in lines[:-1]}
    assert status["gateway token"].startswith("ok") and status["BigQuery credentials"].startswith("ok")
    assert status["Canvas token"].startswith("FAILED: ") and "HTTP 401" in status["Canvas token"]
    assert status["Kaltura session"].startswith("FAILED: Kaltura session.start failed")
    assert status["Zoom base URL"].startswith("FAILED: ") and "ConnectionError" in status["Zoom base URL"]
    assert status["UDW"].startswith("FAILED: cannot connect to the UDW") and "no_such_udw" in status["UDW"]
    assert lines[-1] == f"{len(LABELS) - 4} of {len(LABELS)} checks passed"
    assert "wrong-kaltura-secret" not in "\n".join(lines) and "not-the-token" not in "\n".join(lines)


def test_the_bigquery_simulator_dry_runs_without_running_or_storing(tmp_path):
    from google.api_core import exceptions as api_exceptions
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery
    from google.oauth2 import service_account

    from mivideo import queries
    from sandbox import media_data
    from sandbox.bigquery_sim import DEFAULT_UDP_PROJECT, start_bigquery_server, write_service_account_file
    media = media_data.generate_media(11)
    server, sim = start_bigquery_server(media)
    try:
        key = tmp_path / "sa.json"
        sim.trust(write_service_account_file(key, f"{server.url}/token"))
        credentials = service_account.Credentials.from_service_account_file(str(key))
        client = bigquery.Client(project=credentials.project_id, credentials=credentials,
                                 client_options=ClientOptions(api_endpoint=server.url))
        config = bigquery.QueryJobConfig(dry_run=True, query_parameters=[
            bigquery.ScalarQueryParameter("startTime", "TIMESTAMP", media.default_last_timestamp),
            bigquery.ArrayQueryParameter("kafApps", "STRING", ["x"])])
        job = client.query(queries.media_started_hourly(DEFAULT_UDP_PROJECT), job_config=config)
        assert job.dry_run and job.state == "DONE"
        assert sim.jobs == {} and sim.queries == [] and len(sim.dry_runs) == 1
        with pytest.raises(api_exceptions.BadRequest, match="Query parameter 'kafApps' not found"):
            client.query(queries.media_started_hourly(DEFAULT_UDP_PROJECT), job_config=bigquery.QueryJobConfig(
                dry_run=True, query_parameters=config.query_parameters[:1]))
        with pytest.raises(api_exceptions.NotFound):
            client.query("SELECT 1 FROM `other.event_store.events`", job_config=bigquery.QueryJobConfig(dry_run=True))
        client.close()
    finally:
        server.stop()
