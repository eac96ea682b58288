"""DBCreator: the inventory database's tables, migrations and resets (used by create_db.py and the tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from db.engine import create_inventory_engine
from db.loader import table_counts
from db.schema_migrations import YOYO_TABLES, apply_migrations

logger = logging.getLogger(__name__)


class DBCreator:
    def __init__(self, db_params: Mapping[str, str]) -> None:
        self.db_params = dict(db_params)
        self.db_name: str = self.db_params["dbname"]
        self.engine: sa.Engine = create_inventory_engine(self.db_params)

    def get_table_names(self) -> list[str]:
        """Application tables only (yoyo's bookkeeping tables are not ours to empty)."""
        names = sa.inspect(self.engine).get_table_names()
        return sorted(name for name in names if name not in YOYO_TABLES)

    def count_rows(self) -> dict[str, int]:
        """Rows per application table: what drop_records() would delete."""
        return table_counts(self.engine, self.get_table_names())

    def migrate(self) -> DBCreator:
        apply_migrations(self.db_params)
        return self

    def drop_records(self, table_names: Iterable[str] | None = None) -> DBCreator:
        """Empty the given application tables (all when None) in one transaction; unknown names are ignored."""
        known = self.get_table_names()
        if table_names is None:
            targets = known
        else:
            requested = list(table_names)
            for name in requested:
                if name not in known:
                    logger.error("not an application table of %s, ignored: %s", self.db_name, name)
            targets = [name for name in requested if name in known]
        with self.engine.begin() as conn:
            # DELETE, not TRUNCATE: TRUNCATE commits implicitly and refuses FK-referenced tables.
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
            try:
                for name in targets:
                    conn.execute(sa.text(f"DELETE FROM `{name}`"))
            finally:
                conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 1"))
        logger.info("emptied %d table(s) of %s", len(targets), self.db_name)
        return self

    def reset_database(self) -> DBCreator:
        """Empty every application table, then apply outstanding migrations."""
        return self.drop_records().migrate()
