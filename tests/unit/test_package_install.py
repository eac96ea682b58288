"""`pip install .` for real: the wheel built from the Docker build context holds the product and its package data only,
and the installed `course-inventory` command finds its schema and migrations and its configuration in the
working directory.

Fast on purpose (~10 s): no build isolation and no dependencies installed; the throwaway environment reaches the
test environment's dependencies through a .pth file, so only the product comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.helpers.docker_context import context_files, dockerignore_patterns

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
MIGRATIONS = sorted(path.name for path in (ROOT / "db" / "migrations").glob("*.py"))
CANARIES = ("config/secrets/env.hjson", "config/secrets/CANVAS__CANVAS_TOKEN", "data/zoom_courses.csv",
            "tests/unit/test_canary.py", "sandbox/canary.py", "bench/canary.py")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the throwaway environment's bin directory), built from a copy of the Docker build context."""
    work = tmp_path_factory.mktemp("package")
    source = work / "src"
    for relative in context_files(ROOT, dockerignore_patterns()):
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, source / relative)
    for canary in CANARIES:          # what a developer's checkout holds besides the product: never packaged
        (source / canary).parent.mkdir(parents=True, exist_ok=True)
        (source / canary).write_text("secret-canary-7f3e\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(work / "dist"),
                    str(source)], check=True, timeout=120, capture_output=True)
    wheel = next((work / "dist").glob("*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=120, capture_output=True)
    return wheel, venv / "bin"


def run(bin_dir: Path, *argv: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd), **(env or {})}
    return subprocess.run(list(argv), cwd=cwd, env=environment, text=True, capture_output=True, timeout=60)


def test_the_wheel_holds_the_product_and_its_data_only(installed: tuple[Path, Path]) -> None:
    names = set(zipfile.ZipFile(installed[0]).namelist())
    assert {"run_jobs.py", "create_db.py", "course_inventory_cli.py", "environ.py", "vocab.py",
            "config/env_schema.hjson", "config/env_blank.hjson", "clients/canvas.py", "runner/preflight.py"} <= names
    assert sorted(name.split("/")[-1] for name in names if name.startswith("db/migrations/")) == MIGRATIONS
    assert not [name for name in names if name.split("/")[0] in {"tests", "sandbox", "bench", "data", "scripts"}]
    assert not [name for name in names if "secrets" in name or "canary" in name or "__pycache__" in name]


def test_the_command_reports_the_version_and_lists_the_jobs(installed: tuple[Path, Path], tmp_path: Path) -> None:
    version = run(installed[1], "course-inventory", "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"course-inventory {VERSION}"
    jobs = run(installed[1], "course-inventory", "list-jobs", cwd=tmp_path)
    assert jobs.returncode == 0
    assert [line.split()[0] for line in jobs.stdout.splitlines()] == ["COURSE_INVENTORY", "MIVIDEO",
                                                                      "CANVAS_ZOOM_MEETINGS"]


def test_the_installed_code_finds_its_schema_and_migrations(installed: tuple[Path, Path], tmp_path: Path) -> None:
    probe = ("import environ, db.schema_migrations as m; print(environ.__file__); "
             "print(environ.SCHEMA_PATH.is_file()); print(' '.join(x.id for x in m.read_migration_list()))")
    result = run(installed[1], "python", "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    module, schema_found, ids = result.stdout.splitlines()
    assert Path(module).is_relative_to(installed[1].parent) and schema_found == "True"
    assert ids.split() == [name.removesuffix(".py") for name in MIGRATIONS]


def test_the_default_configuration_is_the_working_directorys(installed: tuple[Path, Path], tmp_path: Path) -> None:
    missing = run(installed[1], "course-inventory", "check-config", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"configuration directory {tmp_path / 'config' / 'secrets'} does not exist" in missing.stderr

    (tmp_path / "config" / "secrets").mkdir(parents=True)
    (tmp_path / "config" / "secrets" / "env.hjson").write_text('{JOB_NAMES: ["MIVIDEO"]}\n')
    invalid = run(installed[1], "course-inventory", "check-config", cwd=tmp_path)
    assert invalid.returncode == 2 and "Traceback" not in invalid.stderr
    assert "INVENTORY_DB" in invalid.stderr and "MIVIDEO" in invalid.stderr     # checked against the schema


def test_run_jobs_is_also_a_module_of_the_installed_package(installed: tuple[Path, Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run(installed[1], "python", "-m", "run_jobs", "--list-jobs", cwd=tmp_path,
                 env={"ENV_DIR": str(elsewhere), "PYTHONPATH": os.devnull})
    assert result.returncode == 0 and result.stdout.startswith("COURSE_INVENTORY")
