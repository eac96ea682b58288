"""Each source's typed settings, read from the validated configuration.

The configuration's keys, types and defaults live in `config/env_schema.hjson` alone: `environ.load_env` checks
a file against it and fills the defaults, and `environ.with_defaults` does the second for a mapping built in code.
These functions only read what that left, so none has a default or a check of its own, and `clients/` never sees
the file's layout: it gets these dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from clients.bigquery import BigQuerySettings
from clients.canvas import CanvasSettings
from clients.http import Timeouts
from clients.kaltura import KalturaSettings
from clients.retry import RetryPolicy
from clients.zoom_lti import ZoomSettings

Env = Mapping[str, Any]


def retry_policy(env: Env, **tuning: float) -> RetryPolicy:
    """MAX_REQ_ATTEMPTS and RETRY_BUDGET_SECONDS (README "Retries"); `tuning` sets a client's own pauses."""
    return RetryPolicy(max_attempts=env["MAX_REQ_ATTEMPTS"], budget_seconds=float(env["RETRY_BUDGET_SECONDS"]),
                       **tuning)


def canvas_settings(env: Env, *, timeouts: Timeouts | None = None) -> CanvasSettings:
    canvas = env["CANVAS"]

    def optional(key: str) -> str:           # the gateway keys: absent when no gateway is used
        return str(canvas.get(key) or "").strip()

    return CanvasSettings(
        canvas_url=canvas["CANVAS_URL"].strip().rstrip("/"), canvas_token=canvas["CANVAS_TOKEN"].strip(),
        account_id=canvas["CANVAS_ACCOUNT_ID"], term_ids=tuple(canvas["CANVAS_TERM_IDS"]),
        add_course_ids=tuple(canvas["ADD_COURSE_IDS"]),
        api_base_url=optional("API_BASE_URL").rstrip("/"), api_scope_prefix=optional("API_SCOPE_PREFIX").strip("/"),
        api_subscription_name=optional("API_SUBSCRIPTION_NAME"), api_client_id=optional("API_CLIENT_ID"),
        api_client_secret=optional("API_CLIENT_SECRET"),
        # A refusal already slows every request of the token down (the limiter cuts its rate), so the refused
        # request itself only steps back briefly instead of sitting out a second, possibly as the run's last.
        policy=retry_policy(env, throttle_initial=0.25), num_workers=env["NUM_ASYNC_WORKERS"],
        timeouts=timeouts or Timeouts())


def zoom_settings(env: Env, *, timeouts: Timeouts | None = None) -> ZoomSettings:
    settings = ZoomSettings(base_url=env["ZOOM"]["BASE_URL"].rstrip("/"), policy=retry_policy(env),
                            num_workers=env["NUM_ASYNC_WORKERS"])
    return settings if timeouts is None else replace(settings, timeouts=timeouts)


def kaltura_settings(env: Env) -> KalturaSettings:
    mivideo = env["MIVIDEO"]
    return KalturaSettings(service_url=mivideo["kaltura_service_url"], partner_id=mivideo["kaltura_partner_id"],
                           secret=mivideo["kaltura_user_secret"], policy=retry_policy(env))


def bigquery_settings(env: Env, config_dir: Path) -> BigQuerySettings:
    mivideo = env["MIVIDEO"]
    return BigQuerySettings(key_file=config_dir / mivideo["udp_service_account_json_filename"],
                            api_endpoint=mivideo["bigquery_api_endpoint"], policy=retry_policy(env))
