"""Docker cannot run here: check the compose file and Dockerfile against what README and SPEC §10 promise."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_compose_has_mysql_on_host_port_4444_with_data_in_dot_data():
    mysql = compose()["services"]["mysql"]
    assert "4444:3306" in mysql["ports"]
    assert "./.data/mysql:/var/lib/mysql" in mysql["volumes"]
    assert mysql["environment"]["MYSQL_DATABASE"]


def test_compose_job_mounts_secrets_and_data_and_waits_for_the_database():
    services = compose()["services"]
    job = services["job"]
    assert job["build"] == "."
    assert job["environment"]["HOW_STARTED"] == "DOCKER_COMPOSE"
    assert "~/secrets/course-inventory:/app/config/secrets" in job["volumes"]
    assert "~/data/course-inventory:/app/data" in job["volumes"]
    assert "mysql" in job["depends_on"]
    db = json.loads(job["environment"]["INVENTORY_DB"])  # an override the runner parses as JSON
    mysql_env = services["mysql"]["environment"]
    assert db["host"] == "mysql" and db["dbname"] == mysql_env["MYSQL_DATABASE"]
    assert db["user"] == mysql_env["MYSQL_USER"] and db["password"] == mysql_env["MYSQL_PASSWORD"]


def test_dockerfile_is_slim_python_311_and_runs_the_runner():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert 'CMD ["python", "run_jobs.py"]' in text
    assert "requirements.txt" in text and "requirements-dev" not in text
    workdir = re.search(r"^WORKDIR (\S+)", text, re.M).group(1)
    assert all(volume.split(":")[1].startswith(workdir) for volume in compose()["services"]["job"]["volumes"])


def test_readme_names_the_commands_the_files_provide():
    readme = (ROOT / "README.md").read_text()
    for command in ("make demo", "make test", "docker compose up", "python run_jobs.py"):
        assert command in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, re.M) and re.search(r"^demo:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
