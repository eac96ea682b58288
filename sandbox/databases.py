"""Throwaway MariaDB/PostgreSQL databases for tests and benchmarks, on the servers at 127.0.0.1.

The servers are the ones scripts/ensure_services.sh makes sure of: MariaDB on 127.0.0.1:3306 as root without a
password, PostgreSQL on 127.0.0.1:5432 as postgres (trust). `TEST_MYSQL_HOST/PORT/USER/PASSWORD` and
`TEST_PG_HOST/PORT/USER/PASSWORD` point them elsewhere. Each database gets a fresh random name and is dropped by
the caller when done.
"""

from __future__ import annotations

import os
import uuid

import psycopg2
import pymysql

MYSQL = {
    "host": os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    "port": os.environ.get("TEST_MYSQL_PORT", "3306"),
    "user": os.environ.get("TEST_MYSQL_USER", "root"),
    "password": os.environ.get("TEST_MYSQL_PASSWORD", ""),
}
POSTGRES = {
    "host": os.environ.get("TEST_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("TEST_PG_PORT", "5432"),
    "user": os.environ.get("TEST_PG_USER", "postgres"),
    "password": os.environ.get("TEST_PG_PASSWORD", ""),
}


def mysql_admin() -> pymysql.Connection:
    """An autocommit connection to the MariaDB server as MYSQL's user, in no database."""
    return pymysql.connect(host=MYSQL["host"], port=int(MYSQL["port"]), user=MYSQL["user"],
                           password=MYSQL["password"], autocommit=True)


def create_mysql_database(prefix: str = "cit") -> dict[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with mysql_admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    return {**MYSQL, "dbname": name}


def drop_mysql_database(params: dict[str, str]) -> None:
    with mysql_admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{params['dbname']}`")


def create_pg_database(prefix: str = "udw") -> dict[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(dbname="postgres", **POSTGRES)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return {**POSTGRES, "dbname": name}


def drop_pg_database(params: dict[str, str]) -> None:
    conn = psycopg2.connect(dbname="postgres", **POSTGRES)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{params["dbname"]}" WITH (FORCE)')
    conn.close()


def clone_schema(template: dict[str, str], target: dict[str, str]) -> None:
    """Copy every table definition (foreign keys included) and yoyo's bookkeeping rows."""
    with mysql_admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (template["dbname"],))
        tables = [row[0] for row in cur.fetchall()]
        cur.execute(f"USE `{target['dbname']}`")
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in tables:
            cur.execute(f"SHOW CREATE TABLE `{template['dbname']}`.`{table}`")
            cur.execute(cur.fetchone()[1])
            if table.startswith(("_yoyo", "yoyo")):
                cur.execute(f"INSERT INTO `{table}` SELECT * FROM `{template['dbname']}`.`{table}`")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")
