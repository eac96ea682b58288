"""Apply the yoyo migrations in db/migrations/ under yoyo's lock."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from pathlib import Path

from yoyo import get_backend, read_migrations

from db.engine import yoyo_uri

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
YOYO_TABLES = frozenset({"_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock"})


def apply_migrations(db_params: Mapping[str, str], *, migrations_dir: Path = MIGRATIONS_DIR,
                     only: Collection[str] | None = None, lock_timeout: int = 60) -> list[str]:
    """Apply every outstanding migration (or only those whose ids are in `only`); returns the ids applied."""
    # yoyo records getpass.getuser(), which fails in containers without a passwd entry (OpenShift).
    os.environ.setdefault("USER", "course-inventory")
    backend = get_backend(yoyo_uri(db_params))
    try:
        migrations = read_migrations(str(migrations_dir))
        if only is not None:
            migrations = migrations.filter(lambda migration: migration.id in only)
        with backend.lock(timeout=lock_timeout):
            outstanding = backend.to_apply(migrations)
            ids = [migration.id for migration in outstanding]
            if ids:
                logger.info("applying %d migration(s): %s", len(ids), ", ".join(ids))
                backend.apply_migrations(outstanding)
            else:
                logger.info("database schema is up to date")
            return ids
    finally:
        backend.connection.close()


def migration_ids(migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    return sorted(path.stem for path in migrations_dir.glob("*.py"))

