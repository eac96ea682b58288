"""What `docker build` sends: the product and its build files, never secrets, data, environments, caches or .git.

The context is computed by the `docker` package's implementation of Docker's .dockerignore rules."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.docker_context import context_files, dockerignore_patterns

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ("clients", "course_inventory", "db", "mivideo", "online_meetings", "runner")

# A checkout as a developer's machine holds it: the product, and everything that must stay out of an image.
PRODUCT = ["run_jobs.py", "create_db.py", "environ.py", "vocab.py", "pyproject.toml", "README.md", "requirements.txt",
           "requirements.lock", "Dockerfile", ".dockerignore", "config/env_schema.hjson", "config/env_blank.hjson",
           "clients/canvas.py", "db/migrations/0001.init_inventory_db.py", "runner/preflight.py"]
KEPT_OUT = ["config/secrets/env.hjson", "config/secrets/CANVAS__CANVAS_TOKEN",
            "config/secrets/udp_service_account.json",
            "config/secrets/.gitkeep", "config/env.local.hjson", "data/zoom_courses.csv", "data/.gitkeep",
            ".data/mysql/ibdata1", ".venv/bin/python", "clients/.venv/pyvenv.cfg", ".git/config", ".env",
            "clients/.env", "clients/__pycache__/canvas.cpython-311.pyc", "db/__pycache__/loader.cpython-311.pyc",
            ".pytest_cache/v/cache/lastfailed", ".ruff_cache/CACHEDIR.TAG", "tests/unit/test_x.py",
            "sandbox/gateway.py",
            "bench/course_inventory.py", "bench/results/run.json", "scripts/bootstrap.sh", "requirements-dev.txt",
            "docker-compose.yaml", "deploy/cronjob.yaml", "build/lib/run_jobs.py",
            "course_inventory.egg-info/PKG-INFO", "notes.txt", "secret.key"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for relative in PRODUCT + KEPT_OUT:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("token-1234-canary\n")
    (tmp_path / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    return tmp_path


def test_the_context_is_the_product_only(checkout: Path) -> None:
    assert context_files(checkout, dockerignore_patterns(checkout / ".dockerignore")) == set(PRODUCT)


def test_a_secret_placed_in_config_secrets_never_reaches_the_context(checkout: Path) -> None:
    for name in ("env.hjson", "INVENTORY_DB__password", "service-account.json", "nested/deeper/key.pem"):
        (checkout / "config" / "secrets" / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / "config" / "secrets" / name).write_text("s3cret\n")
    sent = context_files(checkout, dockerignore_patterns(checkout / ".dockerignore"))
    assert not [path for path in sent if path.startswith("config/secrets")]


def test_the_real_checkout_sends_every_tracked_product_file_and_nothing_else() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    top_level_modules = [path for path in tracked if re.fullmatch(r"[A-Za-z_]\w*\.py", path)]
    product = {path for path in tracked if path.split("/")[0] in PRODUCT_DIRS} | set(top_level_modules) | {
        "pyproject.toml", "README.md", "requirements.txt", "requirements.lock", "config/env_schema.hjson",
        "config/env_blank.hjson", "Dockerfile", ".dockerignore"}
    sent = context_files(ROOT, dockerignore_patterns())
    assert product <= sent
    untracked_modules = {path for path in sent - product
                         if path.endswith(".py") and ("/" not in path or path.split("/")[0] in PRODUCT_DIRS)}
    leaked = sent - product - untracked_modules
    assert leaked == set()


def test_every_file_the_dockerfile_copies_is_in_the_context() -> None:
    sent = context_files(ROOT, dockerignore_patterns())
    sources = [source for line in (ROOT / "Dockerfile").read_text().splitlines()
               if line.startswith("COPY ") and "--from=" not in line for source in line.split()[1:-1]]
    assert sources, "the Dockerfile copies nothing from the context"
    assert all(source == "." or source in sent for source in sources)
