"""Where the program looks for its configuration and writes its CSV copies by default.

In a source checkout that is the checkout itself (`config/secrets/`, `data/` beside `run_jobs.py`), wherever the
command is started from. Installed as a package (`pip install .`), the code lives in a site-packages directory that
is neither the user's nor writable: the same layout is then taken from the working directory (`./config/secrets/`,
`./data/`), which is what the container image's WORKDIR provides. `ENV_DIR` always overrides the configuration's.
"""

from __future__ import annotations

from pathlib import Path

CODE_DIR = Path(__file__).resolve().parent
INSTALL_DIR_NAMES = frozenset({"site-packages", "dist-packages"})   # pip's and Debian's names for them


def is_installed(code_dir: Path) -> bool:
    """Whether the code runs from an installed package rather than a checkout (pure)."""
    return code_dir.name in INSTALL_DIR_NAMES


def home_dir(code_dir: Path = CODE_DIR, cwd: Path | None = None) -> Path:
    """The directory holding `config/secrets/` and `data/` for this installation."""
    if is_installed(code_dir):
        return cwd if cwd is not None else Path.cwd()
    return code_dir


def default_config_dir(code_dir: Path = CODE_DIR, cwd: Path | None = None) -> Path:
    return home_dir(code_dir, cwd) / "config" / "secrets"


def default_data_dir(code_dir: Path = CODE_DIR, cwd: Path | None = None) -> Path:
    return home_dir(code_dir, cwd) / "data"
