"""One probe per source the jobs read, each a single request through the project's own clients; nothing is written.

Each returns a short detail for its `ok` line, or raises (the caller turns the exception into the reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from google.cloud import bigquery

from clients.bigquery import create_bigquery_client
from clients.canvas import GATEWAY, CanvasClient, CanvasSettings, GatewayAuth
from clients.http import HttpClient, Timeouts
from clients.kaltura import KalturaMediaClient
from clients.retry import RetryPolicy
from clients.udw import UdwClient
from db.engine import create_inventory_engine
from db.schema_migrations import pending_migrations
from mivideo import queries
from mivideo.settings import settings_from_env
from source_settings import canvas_settings, zoom_settings
from vocab import ConfigError, FatalSourceError

ONCE = RetryPolicy(max_attempts=1, budget_seconds=0)     # a probe asks once: its answer is the finding
TIMEOUTS = Timeouts(connect=10.0, read=30.0)
MISSING_DATABASE = 1049                                   # ER_BAD_DB_ERROR


def inventory_database(env: Mapping[str, Any]) -> str:
    params = env["INVENTORY_DB"]
    engine = create_inventory_engine(params)
    where = f"{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    try:
        pending = pending_migrations(engine)
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "args", [None])[0] == MISSING_DATABASE:
            return f"{where}: the server answers; the database does not exist yet (a run creates it)"
        raise ConnectionError(f"cannot use {where}: {exc.orig}") from None
    finally:
        engine.dispose()
    if not pending:
        return f"{where}: schema up to date"
    shown = ", ".join(pending) if len(pending) <= 4 else f"{pending[0]} ... {pending[-1]}"
    return f"{where}: {len(pending)} pending migration(s), applied by the next run: {shown}"


def _canvas_settings(env: Mapping[str, Any]) -> CanvasSettings:
    return canvas_settings(env, timeouts=TIMEOUTS)


def gateway_token(env: Mapping[str, Any]) -> str:
    settings = _canvas_settings(env)
    if not settings.gateway_configured:
        raise ConfigError("CANVAS.API_BASE_URL, API_SCOPE_PREFIX, API_CLIENT_ID and API_CLIENT_SECRET are needed")
    http = HttpClient(GATEWAY, policy=ONCE, timeouts=TIMEOUTS)
    try:
        GatewayAuth(http, settings).token()
    finally:
        http.close()
    return f"token issued by {settings.api_base_url}"


def canvas_token(env: Mapping[str, Any]) -> str:
    settings = _canvas_settings(env)
    with CanvasClient(settings, policy=ONCE) as canvas:
        account = canvas.get(f"accounts/{settings.account_id}", kind="preflight")
    name = account.get("name") if isinstance(account, Mapping) else None
    return f"account {settings.account_id} ({name}) readable at {settings.canvas_url}"


def udw(env: Mapping[str, Any]) -> str:
    if env.get("UDW") is None:              # optional: without it the job reads section SIS ids from Canvas
        return "not configured (section SIS ids come from Canvas)"
    value = UdwClient(env["UDW"]).canvasdatadate()
    return f"canvasdatadate {value}"


def kaltura_session(env: Mapping[str, Any], config_dir: Path) -> str:
    settings = settings_from_env(env, config_dir)
    kaltura = replace(settings.kaltura, policy=ONCE, request_timeout_s=int(TIMEOUTS.read))
    client = KalturaMediaClient(kaltura)
    page = client.list_media_page(created_from=int(datetime.now(UTC).timestamp()),
                                  categories_full_name_in=settings.categories_full_name_in, exclude_ids=(),
                                  page_index=1, page_size=1)
    return f"ADMIN session for partner {kaltura.partner_id}; media.list answered ({page.total_count} match(es))"


def bigquery_dry_run(env: Mapping[str, Any], config_dir: Path) -> str:
    settings = settings_from_env(env, config_dir)
    client = create_bigquery_client(settings.bigquery)
    try:
        config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False, query_parameters=[
            bigquery.ScalarQueryParameter("startTime", "TIMESTAMP", settings.default_last_timestamp),
            bigquery.ArrayQueryParameter("kafApps", "STRING", list(settings.kaf_ed_apps))])
        job = client.query(queries.media_started_hourly(settings.udp_events_project), job_config=config)
    finally:
        client.close()
    return f"credentials accepted; dry run of the hourly query: {job.total_bytes_processed or 0} bytes to process"


def zoom_base_url(env: Mapping[str, Any]) -> str:
    settings = zoom_settings(env)
    http = HttpClient("zoom", policy=ONCE, timeouts=TIMEOUTS)
    try:
        response = http.request("GET", settings.base_url, kind="preflight")
        status = response.status_code
    except FatalSourceError as exc:       # any answer below 500 means the host is there
        if exc.status is None or exc.status >= 500:
            raise
        status = exc.status
    finally:
        http.close()
    return f"{settings.base_url} answers (HTTP {status})"
