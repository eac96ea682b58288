"""Exit 0 when the test databases answer: MariaDB/MySQL and PostgreSQL on the TEST_* host/ports."""

from __future__ import annotations

import os
import sys


def mysql_ok() -> str | None:
    import pymysql

    try:
        pymysql.connect(host=os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
                        port=int(os.environ.get("TEST_MYSQL_PORT", "3306")),
                        user=os.environ.get("TEST_MYSQL_USER", "root"),
                        password=os.environ.get("TEST_MYSQL_PASSWORD", ""), connect_timeout=3).close()
    except pymysql.MySQLError as exc:
        return f"mysql: {exc.args[-1] if exc.args else exc}"
    return None


def postgres_ok() -> str | None:
    import psycopg2

    try:
        psycopg2.connect(host=os.environ.get("TEST_PG_HOST", "127.0.0.1"),
                         port=int(os.environ.get("TEST_PG_PORT", "5432")),
                         user=os.environ.get("TEST_PG_USER", "postgres"),
                         password=os.environ.get("TEST_PG_PASSWORD", ""), dbname="postgres", connect_timeout=3).close()
    except psycopg2.Error as exc:
        return f"postgres: {str(exc).strip()}"
    return None


if __name__ == "__main__":
    which = sys.argv[1:] or ["mysql", "postgres"]
    problems = [p for p in ((mysql_ok() if "mysql" in which else None),
                            (postgres_ok() if "postgres" in which else None)) if p]
    for problem in problems:
        print(problem, file=sys.stderr)  # noqa: T201
    sys.exit(1 if problems else 0)
