"""Default configuration and data directories: the checkout's own, or the working directory's when installed."""

from pathlib import Path

import app_paths
import environ
from db import csv_export

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_its_own_directories_wherever_it_is_started() -> None:
    assert not app_paths.is_installed(ROOT)
    assert app_paths.default_config_dir(ROOT, cwd=Path("/elsewhere")) == ROOT / "config" / "secrets"
    assert app_paths.default_data_dir(ROOT, cwd=Path("/elsewhere")) == ROOT / "data"
    assert environ.DEFAULT_CONFIG_DIR == ROOT / "config" / "secrets" and csv_export.DATA_DIR == ROOT / "data"


def test_an_installed_package_uses_the_working_directory() -> None:
    for site in (Path("/venv/lib/python3.11/site-packages"), Path("/usr/lib/python3/dist-packages")):
        assert app_paths.is_installed(site)
        assert app_paths.default_config_dir(site, cwd=Path("/app")) == Path("/app/config/secrets")
        assert app_paths.default_data_dir(site, cwd=Path("/app")) == Path("/app/data")
