"""The compose file and the Dockerfile keep what README "Docker and OpenShift" promises.

`docker compose config` (or docker-compose's) checks the compose file where Docker's compose is installed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line on."""
    return re.split(r"^(?=FROM )", DOCKERFILE, flags=re.M)[1:]


def test_compose_has_mysql_on_host_port_4444_with_data_in_dot_data():
    mysql = compose()["services"]["mysql"]
    assert "4444:3306" in mysql["ports"]
    assert "./.data/mysql:/var/lib/mysql" in mysql["volumes"]
    assert mysql["environment"]["MYSQL_DATABASE"]


def test_compose_job_mounts_secrets_and_data_and_waits_for_a_healthy_database():
    services = compose()["services"]
    job, mysql = services["job"], services["mysql"]
    assert job["build"] == "."
    assert job["environment"]["HOW_STARTED"] == "DOCKER_COMPOSE"
    assert "~/secrets/course-inventory:/app/config/secrets" in job["volumes"]
    assert "~/data/course-inventory:/app/data" in job["volumes"]
    assert job["depends_on"] == {"mysql": {"condition": "service_healthy"}}
    assert mysql["healthcheck"]["test"][:3] == ["CMD", "mysqladmin", "ping"]
    assert job["user"].endswith(":0")                                    # group 0, as on OpenShift
    db = json.loads(job["environment"]["INVENTORY_DB"])  # an override the runner parses as JSON
    mysql_env = mysql["environment"]
    assert db["host"] == "mysql" and db["dbname"] == mysql_env["MYSQL_DATABASE"]
    assert db["user"] == mysql_env["MYSQL_USER"] and db["password"] == mysql_env["MYSQL_PASSWORD"]


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return [shutil.which("docker-compose")] if shutil.which("docker-compose") else None


@pytest.mark.skipif(compose_command() is None, reason="neither `docker compose` nor docker-compose is installed")
def test_docker_compose_config_accepts_the_file(tmp_path):
    result = subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yaml"), "config"],
                            capture_output=True, text=True, timeout=60,
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert resolved["job"]["depends_on"]["mysql"]["condition"] == "service_healthy"
    assert f"{tmp_path}/secrets/course-inventory:/app/config/secrets" in str(resolved["job"]["volumes"])
    assert resolved["job"]["user"] == "1000:0"


def test_the_base_image_is_slim_python_311_unless_another_is_given():
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", DOCKERFILE, re.M)
    assert DOCKERFILE.index("ARG BASE_IMAGE") < re.search(r"^FROM ", DOCKERFILE, re.M).start()
    assert all(stage.startswith("FROM ${BASE_IMAGE}") for stage in stages())


def test_the_image_installs_the_locked_dependencies_and_the_package_only():
    build = stages()[0]
    assert re.search(r"pip install --require-hashes .*-r /src/requirements\.lock", build)
    assert "pip install --no-deps /src" in build
    assert "requirements-dev" not in DOCKERFILE and "requirements.txt" not in DOCKERFILE
    final = stages()[-1]
    assert "COPY --from=build /opt/course-inventory /opt/course-inventory" in final
    assert not re.search(r"^COPY (?!--from=)", final, re.M)              # nothing from the checkout itself


def test_the_image_runs_as_a_non_root_user_that_works_under_an_arbitrary_uid():
    final = stages()[-1]
    user = re.findall(r"^USER (\S+)$", final, re.M)
    assert user and user[-1].isdigit() and int(user[-1]) != 0
    assert re.search(r"^ENV .*\bUSER=\S+", final, re.M)                  # yoyo's getpass.getuser()
    assert "chgrp -R 0 /app" in final and "chmod -R g=u /app" in final
    assert 'CMD ["course-inventory", "run"]' in final
    workdir = re.search(r"^WORKDIR (\S+)", final, re.M).group(1)
    assert all(volume.split(":")[1].startswith(workdir) for volume in compose()["services"]["job"]["volumes"])


def test_readme_names_the_commands_the_files_provide():
    readme = (ROOT / "README.md").read_text()
    for command in ("make demo", "make test", "make lock", "docker compose up", "python run_jobs.py", "pip install .",
                    "course-inventory check-config", "deploy/base-image/build.sh"):
        assert command in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, re.M) and re.search(r"^demo:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
