"""The `course-inventory` command of the installed package: one subcommand per thing run_jobs.py and create_db.py do.

    course-inventory run [--jobs NAME ...] [--strict] [--allow-shrink] [--log-level LEVEL]   # python run_jobs.py
    course-inventory check-config [--jobs NAME ...] [--strict]                  # python run_jobs.py --check-config
    course-inventory list-jobs                                                  # python run_jobs.py --list-jobs
    course-inventory create-db [--yes]                                          # python create_db.py
    course-inventory --version

Each subcommand hands its own options to the same parser and main function as the script it stands for, so
options, messages and exit codes are those of the script.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable, Sequence
from importlib import metadata

from app_paths import CODE_DIR

DISTRIBUTION = "course-inventory"
PROG = "course-inventory"


def package_version() -> str:
    """The installed distribution's version; in a checkout that is not installed, pyproject.toml's."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        with (CODE_DIR / "pyproject.toml").open("rb") as stream:
            return str(tomllib.load(stream)["project"]["version"])


def _run_jobs(mode: str) -> Callable[[Sequence[str], str], int]:
    def delegate(argv: Sequence[str], prog: str) -> int:
        # Imported on use: --version and --help need none of the job code.
        import run_jobs
        return run_jobs.main(list(argv), prog=prog, mode=mode)
    return delegate


def _create_db(argv: Sequence[str], prog: str) -> int:
    import create_db
    return create_db.main(list(argv), prog=prog)


COMMANDS: dict[str, tuple[str, Callable[[Sequence[str], str], int]]] = {
    "run": ("run the jobs of JOB_NAMES (or --jobs) and load them into the inventory database", _run_jobs("run")),
    "check-config": ("preflight: check the configuration, the database and every source once; writes nothing",
                     _run_jobs("check-config")),
    "list-jobs": ("list the known jobs and their entry functions", _run_jobs("list-jobs")),
    "create-db": ("empty every application table and apply migrations (asks first, unless --yes)", _create_db),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Collect Canvas, MiVideo and Zoom data into the course-inventory MySQL database.",
        epilog=f"'{PROG} COMMAND --help' lists a command's options. Configuration: $ENV_DIR/$ENV_FILE "
               "(default ./config/secrets/env.hjson when installed), $ENV_SECRETS_DIR, environment overrides.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, _) in COMMANDS.items():
        # The delegate parses the options (and --help) itself; this parser only picks the command.
        commands.add_parser(name, help=summary, description=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(sys.argv[1:] if argv is None else list(argv))
    _, delegate = COMMANDS[args.command]
    return delegate(rest, f"{PROG} {args.command}")


if __name__ == "__main__":
    sys.exit(main())
