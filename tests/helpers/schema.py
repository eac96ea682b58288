"""Describe a MySQL/MariaDB schema through information_schema, for exact comparisons."""

from __future__ import annotations

import sqlalchemy as sa

YOYO_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock")


def describe_schema(engine: sa.Engine, *, include_yoyo: bool = False) -> dict[str, set[tuple]]:
    """Tables, columns, indexes and foreign keys of the engine's database as comparable sets."""
    queries = {
        "tables": """SELECT table_name, engine, table_collation FROM information_schema.tables
                     WHERE table_schema = DATABASE()""",
        "columns": """SELECT table_name, column_name, ordinal_position, column_type, is_nullable,
                             column_default, extra, character_set_name, collation_name
                      FROM information_schema.columns WHERE table_schema = DATABASE()""",
        "indexes": """SELECT table_name, index_name, non_unique, seq_in_index, column_name
                      FROM information_schema.statistics WHERE table_schema = DATABASE()""",
        "foreign_keys": """SELECT k.table_name, k.constraint_name, k.column_name, k.referenced_table_name,
                                  k.referenced_column_name, r.update_rule, r.delete_rule
                           FROM information_schema.key_column_usage k
                           JOIN information_schema.referential_constraints r
                             ON r.constraint_schema = k.constraint_schema AND r.constraint_name = k.constraint_name
                           WHERE k.table_schema = DATABASE()""",
        "constraints": """SELECT table_name, constraint_name, constraint_type
                          FROM information_schema.table_constraints WHERE table_schema = DATABASE()""",
    }
    with engine.connect() as conn:
        result = {name: {tuple(row) for row in conn.execute(sa.text(sql))} for name, sql in queries.items()}
    if not include_yoyo:
        result = {name: {row for row in rows if row[0] not in YOYO_TABLES} for name, rows in result.items()}
    return result
