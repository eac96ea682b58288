"""Google BigQuery client for UDP event queries, authenticated with a service-account key file.

`create_bigquery_client` builds the real `google.cloud.bigquery.Client` (project taken from the key file,
`client_options={"api_endpoint": ...}` when an endpoint is configured, e.g. a simulator).
`BigQueryReader.query_df` runs one parameterised standard-SQL query and returns its rows as a DataFrame.
The library retries transient HTTP failures itself; here its retry is bounded by a deadline (its default
is ten minutes) and whatever it finally raises becomes one of vocab's SourceErrors. Messages never carry
the key file's contents or access tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery
from google.oauth2 import service_account

from vocab import ConfigError, FatalSourceError, RetriableSourceError, SourceError

logger = logging.getLogger(__name__)

SOURCE = "bigquery"
SCOPES = ("https://www.googleapis.com/auth/bigquery.readonly", "https://www.googleapis.com/auth/cloud-platform")


@dataclass(frozen=True)
class BigQuerySettings:
    key_file: Path
    api_endpoint: str = ""             # empty: Google's endpoint
    retry_deadline_s: float = 120.0    # how long the library may retry one API call
    retry_initial_delay_s: float = 1.0 # its first pause (doubled per retry, up to 30 s)
    query_timeout_s: float = 900.0     # how long to wait for a query job to finish
    max_attempts: int = 3              # runs of a query whose failure was transient (queries are read-only)


def create_bigquery_client(settings: BigQuerySettings) -> bigquery.Client:
    """A Client authenticated by the key file (whose token endpoint it uses), in the key file's project."""
    try:
        credentials = service_account.Credentials.from_service_account_file(str(settings.key_file), scopes=SCOPES)
    except FileNotFoundError as exc:
        raise ConfigError(f"service-account key file {settings.key_file} does not exist") from exc
    except (ValueError, KeyError) as exc:       # malformed JSON or missing fields; the message holds no key material
        raise ConfigError(f"service-account key file {settings.key_file} is not a valid key: "
                          f"{type(exc).__name__}") from exc
    options = ClientOptions(api_endpoint=settings.api_endpoint.rstrip("/")) if settings.api_endpoint else None
    return bigquery.Client(project=credentials.project_id, credentials=credentials, client_options=options)


def _parameter(name: str, value: Any) -> bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter:
    """A named query parameter typed from the Python value (aware datetimes are TIMESTAMPs)."""
    if isinstance(value, list | tuple):
        return bigquery.ArrayQueryParameter(name, "STRING", [str(v) for v in value])
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"query parameter {name} must be a tz-aware datetime")
        return bigquery.ScalarQueryParameter(name, "TIMESTAMP", value)
    if isinstance(value, date):
        return bigquery.ScalarQueryParameter(name, "DATE", value)
    if isinstance(value, bool):
        return bigquery.ScalarQueryParameter(name, "BOOL", value)
    if isinstance(value, int):
        return bigquery.ScalarQueryParameter(name, "INT64", value)
    return bigquery.ScalarQueryParameter(name, "STRING", None if value is None else str(value))


class BigQueryReader:
    """Runs read-only queries; one place that maps the library's failures to SourceErrors."""

    def __init__(self, client: bigquery.Client, settings: BigQuerySettings, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client, self._settings, self._sleep = client, settings, sleep
        self._retry = bigquery.DEFAULT_RETRY.with_deadline(settings.retry_deadline_s).with_delay(
            initial=settings.retry_initial_delay_s, maximum=30.0)

    @property
    def project(self) -> str:
        return str(self._client.project)

    def query_df(self, sql: str, parameters: Mapping[str, Any], *, label: str = "query") -> pd.DataFrame:
        """All rows of one query. A transient failure re-runs the whole query (a new job), up to max_attempts."""
        config = bigquery.QueryJobConfig(query_parameters=[_parameter(k, v) for k, v in parameters.items()],
                                         use_legacy_sql=False)
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                return self._run(sql, config, label)
            except RetriableSourceError as exc:
                if attempt == self._settings.max_attempts:
                    raise
                wait = min(30.0, 2.0 ** attempt)
                logger.warning("%s; attempt %d of %d, retrying in %.0fs", exc, attempt, self._settings.max_attempts,
                               wait)
                self._sleep(wait)
        raise AssertionError("unreachable")

    def _run(self, sql: str, config: bigquery.QueryJobConfig, label: str) -> pd.DataFrame:
        try:
            job = self._client.query(sql, job_config=config, retry=self._retry, job_retry=None)
            rows = job.result(retry=self._retry, timeout=self._settings.query_timeout_s, job_retry=None)
            frame = rows.to_dataframe(create_bqstorage_client=False)
        except _LIBRARY_ERRORS as exc:
            raise _source_error(label, exc) from exc
        logger.info("BigQuery %s returned %d rows (job %s)", label, len(frame), job.job_id)
        return frame

    def close(self) -> None:
        self._client.close()


# A truncated body (JSONDecodeError) is transient too: the next attempt gets a whole one.
_RETRIABLE = (api_exceptions.ServerError, api_exceptions.TooManyRequests, api_exceptions.RetryError,
              auth_exceptions.TransportError, requests.ConnectionError, requests.Timeout, requests.JSONDecodeError,
              TimeoutError)
_LIBRARY_ERRORS = (*_RETRIABLE, api_exceptions.GoogleAPICallError, auth_exceptions.GoogleAuthError,
                   requests.RequestException)


def _source_error(label: str, exc: Exception) -> SourceError:
    """vocab's exception for what the library finally raised."""
    if isinstance(exc, auth_exceptions.RefreshError):
        # The token endpoint refused the key (revoked, wrong project, clock skew): retrying cannot help.
        return FatalSourceError(f"BigQuery {label}: service-account authentication failed: {_short(exc)}",
                                source=SOURCE)
    if isinstance(exc, _RETRIABLE):
        return RetriableSourceError(f"BigQuery {label} failed, retries exhausted: {_short(exc)}", source=SOURCE)
    status = exc.code if isinstance(exc, api_exceptions.GoogleAPICallError) and isinstance(exc.code, int) else None
    return FatalSourceError(f"BigQuery {label} failed: {_short(exc)}", source=SOURCE, status=status)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
