"""The BigQuery simulator's query engine: BigQuery Standard SQL evaluated in DuckDB over UDP's `event_store.events`.

sqlglot transpiles the BigQuery dialect to DuckDB, which runs it over the generated Caliper events. The
translation fixes what sqlglot gets wrong or cannot know: JSON path keys such as `kaf:course_id`, the UTC session
time zone, the project name in table references, `CURRENT_DATE()` (the simulator's clock, not the machine's) and
query parameters (bound, typed). Only events already stored at the clock's "now" are visible. Errors are
`BigQueryError`s, which sandbox/bigquery_sim.py renders as the REST API's error JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from sandbox.media_data import MediaData

LOCATION = "US"
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# UDP's event_store.events columns the job's query reads (the Caliper event itself is JSON text).
EVENT_COLUMNS = (("id", "VARCHAR"), ("type", "VARCHAR"), ("action", "VARCHAR"), ("event_time", "TIMESTAMPTZ"),
                 ("ed_app", "VARCHAR"), ("course_offering_id", "VARCHAR"), ("actor_id", "VARCHAR"),
                 ("event", "VARCHAR"), ("store_time", "TIMESTAMPTZ"))
_PANDAS_TYPES = {"VARCHAR": "object", "TIMESTAMPTZ": "datetime64[us, UTC]"}
_DUCK_TO_BQ = {
    "BOOLEAN": "BOOLEAN", "TINYINT": "INTEGER", "SMALLINT": "INTEGER", "INTEGER": "INTEGER", "BIGINT": "INTEGER",
    "HUGEINT": "INTEGER", "UTINYINT": "INTEGER", "USMALLINT": "INTEGER", "UINTEGER": "INTEGER",
    "UBIGINT": "INTEGER", "FLOAT": "FLOAT", "DOUBLE": "FLOAT", "VARCHAR": "STRING", "DATE": "DATE",
    "TIMESTAMP": "DATETIME", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "TIME": "TIME", "BLOB": "BYTES",
    "JSON": "JSON",
}


class BigQueryError(Exception):
    """An API error: HTTP status, BigQuery `reason` and message (rendered as Google's error JSON)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def body(self) -> dict[str, Any]:
        status_names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
        return {"error": {"code": self.status, "message": self.message,
                          "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                          "status": status_names.get(self.status, "UNKNOWN")}}

    def error_result(self) -> dict[str, str]:
        return {"reason": self.reason, "location": "query", "message": self.message}



# ---------------------------------------------------------------- SQL: BigQuery -> DuckDB
def _bigquery_json_path(path: str) -> str:
    """Re-spell a BigQuery JSONPath so sqlglot keeps keys like `kaf:course_id` whole (it splits at ':')."""
    keys: list[str] = []
    rest = path[1:]
    while rest:
        if rest.startswith("."):
            match = re.match(r"\.([^.\[]+)", rest)
            if not match:
                return path
            keys.append(match.group(1))
        else:
            match = re.match(r"\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]", rest)
            if not match:
                return path
            keys.append(match.group(1) or match.group(2) or f"[{match.group(3)}]")
        rest = rest[match.end():]
    parts = [k if k.startswith("[") else f".{k}" if _BARE_KEY.fullmatch(k) else f"['{k}']" for k in keys]
    return "$" + "".join(parts)


def _fix_json_paths(sql: str) -> str:
    tokens = sqlglot.Dialect.get_or_raise("bigquery").tokenize(sql)
    pieces, last = [], 0
    for token in tokens:
        if token.token_type == TokenType.STRING and token.text.startswith("$"):
            fixed = _bigquery_json_path(token.text)
            if fixed != token.text:
                pieces += [sql[last:token.start], '"' + fixed.replace("\\", "\\\\").replace('"', '\\"') + '"']
                last = token.end + 1
    return "".join(pieces) + sql[last:]


def _query_parameter(param: Mapping[str, Any]) -> tuple[str, Any]:
    """A jobs.insert queryParameter -> (name, Python value DuckDB binds with the same meaning)."""
    kind = param.get("parameterType", {})
    value = param.get("parameterValue", {})
    return param.get("name", ""), _typed_value(kind, value)


def _typed_value(kind: Mapping[str, Any], value: Mapping[str, Any]) -> Any:
    if kind.get("type") == "ARRAY":
        return [_typed_value(kind.get("arrayType", {}), item) for item in value.get("arrayValues", [])]
    raw = value.get("value")
    if raw is None:
        return None
    converters = {
        "INT64": int, "INTEGER": int, "FLOAT64": float, "FLOAT": float, "BOOL": lambda v: v.lower() == "true",
        "BOOLEAN": lambda v: v.lower() == "true", "STRING": str, "NUMERIC": Decimal, "BIGNUMERIC": Decimal,
        "DATE": date.fromisoformat, "DATETIME": lambda v: datetime.fromisoformat(v).replace(tzinfo=None),
        "TIMESTAMP": lambda v: datetime.fromisoformat(v.replace(" UTC", "+00:00")).astimezone(UTC),
    }
    try:
        return converters[kind.get("type", "STRING")](raw)
    except (KeyError, ValueError) as exc:
        raise BigQueryError(400, "invalidQuery", f"Invalid query parameter value {raw!r}") from exc


@dataclass(frozen=True)
class Translation:
    sql: str
    parameters: frozenset[str]


def translate(sql: str, *, job_project: str, udp_project: str, now: datetime) -> Translation:
    """BigQuery SQL -> DuckDB SQL over this simulator's tables, as of `now`."""
    try:
        tree = sqlglot.parse_one(_fix_json_paths(sql), read="bigquery")
    except sqlglot.errors.ParseError as exc:
        raise BigQueryError(400, "invalidQuery", f"Syntax error: {exc}") from exc
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if table.name in cte_names and not table.db:
            continue
        project, dataset = table.catalog or job_project, table.db
        if (project, dataset, table.name) != (udp_project, "event_store", "events"):
            known = project == udp_project and dataset == "event_store"
            what = f"Table {project}:{dataset}.{table.name}" if known else f"Dataset {project}:{dataset or '?'}"
            raise BigQueryError(404, "notFound", f"Not found: {what} was not found in location {LOCATION}")
        visible = sqlglot.parse_one(
            f"SELECT * FROM event_store.events WHERE store_time <= CAST('{now.isoformat()}' AS TIMESTAMPTZ)",
            read="duckdb")
        table.replace(exp.Subquery(this=visible, alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name))))
    for node in list(tree.find_all(exp.CurrentDate)):         # BigQuery's CURRENT_DATE([zone]), default UTC
        zone = ZoneInfo(node.this.name) if isinstance(node.this, exp.Literal) else UTC
        node.replace(exp.cast(exp.Literal.string(now.astimezone(zone).date().isoformat()), exp.DataType.build("DATE")))
    for node in list(tree.find_all(exp.CurrentTimestamp)):
        node.replace(exp.cast(exp.Literal.string(now.isoformat()), exp.DataType.build("TIMESTAMPTZ")))
    names = frozenset(p.name for p in tree.find_all(exp.Parameter))
    return Translation(tree.sql("duckdb"), names)


@dataclass
class QueryResult:
    fields: list[dict[str, str]]
    rows: list[tuple[Any, ...]]


class EventStore:
    """UDP's event_store.events in DuckDB (in memory), queried through `translate`."""

    def __init__(self, data: MediaData) -> None:
        self._db = duckdb.connect(":memory:")
        self._db.execute("SET TimeZone = 'UTC'")
        self._db.execute("CREATE SCHEMA event_store")
        self._db.execute(f"CREATE TABLE event_store.events ({', '.join(f'{n} {t}' for n, t in EVENT_COLUMNS)})")
        # Loaded from a pandas frame of Python objects (duckdb scans it with numpy), so no pyarrow is needed.
        frame = pd.DataFrame({name: pd.Series([getattr(e, name) for e in data.events], dtype=_PANDAS_TYPES[kind])
                              for name, kind in EVENT_COLUMNS})
        self._db.register("generated_events", frame)
        self._db.execute("INSERT INTO event_store.events SELECT * FROM generated_events")
        self._db.unregister("generated_events")

    def run(self, sql: str, params: list[Mapping[str, Any]], *, job_project: str, udp_project: str,
            now: datetime, explain_only: bool = False) -> QueryResult:
        """The query's rows; with `explain_only`, only checked (syntax, tables, parameters, columns)."""
        translation = translate(sql, job_project=job_project, udp_project=udp_project, now=now)
        bound = dict(_query_parameter(p) for p in params)
        missing = sorted(translation.parameters - bound.keys())
        if missing:
            raise BigQueryError(400, "invalidQuery", f"Query parameter '{missing[0]}' not found")
        cursor = self._db.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            if explain_only:
                cursor.execute(f"EXPLAIN {translation.sql}",
                               {k: v for k, v in bound.items() if k in translation.parameters})
                return QueryResult([], [])
            cursor.execute(translation.sql, {k: v for k, v in bound.items() if k in translation.parameters})
            fields = [{"name": name, "type": _DUCK_TO_BQ.get(str(kind), "STRING"), "mode": "NULLABLE"}
                      for name, kind, *_ in cursor.description]
            return QueryResult(fields, cursor.fetchall())
        except duckdb.Error as exc:
            raise BigQueryError(400, "invalidQuery", f"Query error: {exc}") from exc
        finally:
            cursor.close()


def encode_cell(value: Any, bq_type: str, int64_timestamps: bool) -> Any:
    """One row value as the REST API sends it (`{"v": ...}`)."""
    if value is None:
        return None
    if bq_type == "TIMESTAMP":
        micros = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return str(micros) if int64_timestamps else f"{micros / 1e6:.6E}"
    if bq_type == "BOOLEAN":
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
