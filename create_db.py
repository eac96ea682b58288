"""Empty every application table of the inventory database and apply outstanding migrations."""

from __future__ import annotations

import logging
import os
import sys

import environ
from db.availability import ensure_database
from db.db_creator import DBCreator
from log_setup import configure_logging
from vocab import ConfigError, DatabaseUnavailableError

logger = logging.getLogger("create_db")


def main() -> int:
    configure_logging("INFO")
    try:
        env = environ.load_env(environ.config_path(), environ.SCHEMA_PATH, os.environ)
        configure_logging(env["LOG_LEVEL"], environ.secret_values(env))
        ensure_database(env["INVENTORY_DB"])
        DBCreator(env["INVENTORY_DB"]).reset_database()
    except (ConfigError, DatabaseUnavailableError) as exc:
        logger.error("%s", exc)
        return 2
    logger.info("inventory database emptied and migrated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
