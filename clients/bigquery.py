"""Google BigQuery client for UDP event queries, authenticated with a service-account key file.

`create_bigquery_client` builds the real `google.cloud.bigquery.Client` (project taken from the key file,
`client_options={"api_endpoint": ...}` when an endpoint is configured, e.g. a simulator).
`BigQueryReader.query_df` runs one parameterised standard-SQL query and returns its rows as a DataFrame, built
from the decoded rows (`clients.bigquery_frames`), not through pandas' Arrow path: no pyarrow or db-dtypes needed.
One retry policy (`clients.retry.RetryPolicy`) governs both levels: the library's own retry of each API call
takes its time budget and backoff bounds, and a query whose job still failed transiently is run again (a new
job; queries are read-only) through `clients.retry.call_with_retries`. Neither session follows a redirect:
the token request carries a signed service-account assertion and API calls a Bearer token. Messages never carry
the key file's contents or access tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.cloud import bigquery
from google.oauth2 import service_account

from clients.bigquery_frames import columns_of, rows_to_frame
from clients.retry import RetryPolicy, call_with_retries
from vocab import ConfigError, FatalSourceError, RetriableSourceError, SourceError

logger = logging.getLogger(__name__)

SOURCE = "bigquery"
SCOPES = ("https://www.googleapis.com/auth/bigquery.readonly", "https://www.googleapis.com/auth/cloud-platform")


@dataclass(frozen=True)
class BigQuerySettings:
    key_file: Path
    api_endpoint: str = ""             # empty: Google's endpoint
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    query_timeout_s: float = 900.0     # how long to wait for a query job to finish


def no_redirect_session() -> requests.Session:
    """A session that raises TooManyRedirects on the first redirect, before sending anything to its target."""
    session = requests.Session()
    session.max_redirects = 0
    return session


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
    http = AuthorizedSession(credentials, auth_request=GoogleAuthRequest(session=no_redirect_session()))
    http.max_redirects = 0
    return bigquery.Client(project=credentials.project_id, credentials=credentials, client_options=options,
                           _http=http)


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
        policy = settings.policy
        self._retry = bigquery.DEFAULT_RETRY.with_timeout(policy.budget_seconds).with_delay(
            initial=policy.backoff_initial, maximum=policy.backoff_max)

    @property
    def project(self) -> str:
        return str(self._client.project)

    def query_df(self, sql: str, parameters: Mapping[str, Any], *, label: str = "query") -> pd.DataFrame:
        """All rows of one query. A transient failure re-runs the whole query (a new job) under the retry policy."""
        config = bigquery.QueryJobConfig(query_parameters=[_parameter(k, v) for k, v in parameters.items()],
                                         use_legacy_sql=False)
        return call_with_retries(lambda: self._run(sql, config, label), self._settings.policy, sleep=self._sleep)

    def _run(self, sql: str, config: bigquery.QueryJobConfig, label: str) -> pd.DataFrame:
        try:
            job = self._client.query(sql, job_config=config, retry=self._retry, job_retry=None)
            rows = job.result(retry=self._retry, timeout=self._settings.query_timeout_s, job_retry=None)
            values = [row.values() for row in rows]      # pages through the results over REST
            frame = rows_to_frame(columns_of(rows.schema), values)
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
    if _caused_by(exc, requests.TooManyRedirects):
        # Retrying cannot help, and following it would carry the assertion or token to the redirect's host.
        return FatalSourceError(f"BigQuery {label}: a redirect was not followed (the request carries credentials)",
                                source=SOURCE)
    if isinstance(exc, auth_exceptions.RefreshError):
        # The token endpoint refused the key (revoked, wrong project, clock skew): retrying cannot help.
        return FatalSourceError(f"BigQuery {label}: service-account authentication failed: {_short(exc)}",
                                source=SOURCE)
    if isinstance(exc, _RETRIABLE):
        return RetriableSourceError(f"BigQuery {label} failed, retries exhausted: {_short(exc)}", source=SOURCE)
    status = exc.code if isinstance(exc, api_exceptions.GoogleAPICallError) and isinstance(exc.code, int) else None
    return FatalSourceError(f"BigQuery {label} failed: {_short(exc)}", source=SOURCE, status=status)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):                        # the library wraps transport errors a few levels deep
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
