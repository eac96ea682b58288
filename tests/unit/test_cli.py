"""The `course-inventory` command: each subcommand is the script it stands for, with that script's options and codes."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import course_inventory_cli as cli
import create_db
import run_jobs
from vocab import ValidJobName

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"course-inventory {PYPROJECT_VERSION}"


def test_list_jobs_prints_every_job_and_its_entry_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list-jobs"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert listed == [[job.name, job.value] for job in ValidJobName]


@pytest.mark.parametrize(("argv", "script", "expected"), [
    (["run"], "run_jobs", ([], "course-inventory run", "run")),
    (["run", "--jobs", "mivideo", "--allow-shrink"], "run_jobs",
     (["--jobs", "mivideo", "--allow-shrink"], "course-inventory run", "run")),
    (["check-config", "--strict"], "run_jobs", (["--strict"], "course-inventory check-config", "check-config")),
    (["list-jobs"], "run_jobs", ([], "course-inventory list-jobs", "list-jobs")),
    (["create-db", "--yes"], "create_db", (["--yes"], "course-inventory create-db", None)),
])
def test_each_command_hands_its_options_to_its_script(monkeypatch: pytest.MonkeyPatch, argv: list[str], script: str,
                                                       expected: tuple) -> None:
    calls: list[tuple] = []
    monkeypatch.setattr(run_jobs, "main", lambda argv, *, prog, mode: calls.append(("run_jobs", argv, prog, mode)) or 7)
    monkeypatch.setattr(create_db, "main", lambda argv, *, prog: calls.append(("create_db", argv, prog, None)) or 7)
    assert cli.main(argv) == 7                       # the script's exit code is the command's
    assert calls == [(script, *expected)]


@pytest.mark.parametrize(("command", "offered", "not_offered"), [
    ("run", ["--jobs", "--strict", "--allow-shrink", "--log-level"], ["--check-config", "--list-jobs"]),
    ("check-config", ["--jobs", "--strict"], ["--check-config", "--list-jobs"]),
    ("create-db", ["--yes"], ["--jobs"]),
])
def test_help_is_the_scripts_own_under_the_command_name(capsys: pytest.CaptureFixture[str], command: str,
                                                        offered: list[str], not_offered: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: course-inventory {command}")
    assert all(option in text for option in offered) and not any(option in text for option in not_offered)


def test_a_mode_option_given_to_its_own_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["check-config", "--list-jobs"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --list-jobs" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["--jobs", "MIVIDEO"]])
def test_no_or_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("usage: course-inventory")


def test_check_config_without_a_configuration_fails_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = subprocess.run([sys.executable, "-m", "course_inventory_cli", "check-config"], cwd=ROOT, text=True,
                            capture_output=True, timeout=60, env={"ENV_DIR": str(missing), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert f"configuration directory {missing} does not exist" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
