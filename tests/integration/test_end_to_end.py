"""All three jobs through run_jobs.py against the whole sandbox, at DEBUG, with distinctive secrets."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox.canvas_rest import CanvasOptions
from sandbox.databases import MYSQL, POSTGRES, mysql_admin
from sandbox.gateway import GatewayOptions
from sandbox.generator import generate_university
from sandbox.runner import Sandbox, SandboxOptions

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "canvas_token": "canvas-tok-5e1f0a9c77d2",
    "gateway_secret": "gw-secret-8b3d2e6f41aa",
    "kaltura_secret": "kaltura-secret-0c9a7b3e55f1",
    "db_password": "db-pass-3f8e1d2c6b7a",
    "udw_password": "udw-pass-9d4c2b1a0e6f",
    "lti_secret": "lti-secret-7a6b5c4d3e2f",
}


@pytest.fixture
def secret_db_user(inventory_db_params):
    """A MariaDB account with a distinctive password, allowed on the throwaway database only."""
    user = "ci_" + inventory_db_params["dbname"][-12:]
    admin = mysql_admin()
    with admin, admin.cursor() as cursor:
        for host in ("localhost", "127.0.0.1", "%"):
            cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY {admin.escape(SECRETS['db_password'])}")
            cursor.execute(f"GRANT ALL ON `{inventory_db_params['dbname']}`.* TO '{user}'@'{host}'")
            cursor.execute(f"GRANT FILE ON *.* TO '{user}'@'{host}'")
    yield {**inventory_db_params, "user": user, "password": SECRETS["db_password"]}
    admin = mysql_admin()
    with admin, admin.cursor() as cursor:
        for host in ("localhost", "127.0.0.1", "%"):
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


def test_every_job_runs_and_no_secret_is_printed(tmp_path, udw_db_params, secret_db_user):
    university = generate_university("small", seed=11)
    options = SandboxOptions(
        seed=11,
        canvas=CanvasOptions(tokens=frozenset({SECRETS["canvas_token"]}), seed=11,
                             lti_shared_secret=SECRETS["lti_secret"]),
        gateway=replace(GatewayOptions(), client_secret=SECRETS["gateway_secret"]),
        service_options={"kaltura": {"kaltura_secret": SECRETS["kaltura_secret"]}},
        udw_db={**udw_db_params, "password": SECRETS["udw_password"]},
        inventory_db=secret_db_user,
        env_file=tmp_path / "env.hjson",
    )
    with Sandbox(university, options):
        result = subprocess.run(
            [sys.executable, "run_jobs.py", "--log-level", "DEBUG"], cwd=ROOT, capture_output=True, text=True,
            timeout=600, env={"ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "DEBUG" in output and "all jobs succeeded" in output
    for name, secret in SECRETS.items():
        assert secret not in output, name
    assert "PRIVATE KEY" not in output
    engine = sa.create_engine(f"mysql+pymysql://{MYSQL['user']}@{MYSQL['host']}:{MYSQL['port']}/"
                              f"{secret_db_user['dbname']}")
    with engine.connect() as conn:
        jobs = conn.execute(sa.text("SELECT job_name FROM job_run ORDER BY id")).scalars().all()
        sources = conn.execute(sa.text("SELECT COUNT(*) FROM data_source_status")).scalar()
    engine.dispose()
    assert jobs == ["COURSE_INVENTORY", "MIVIDEO", "CANVAS_ZOOM_MEETINGS"] and sources == 5
    assert POSTGRES  # the UDW ran on the real PostgreSQL (trust auth accepts the distinctive password)
