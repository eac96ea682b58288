"""BigQuery REST v2 as `google-cloud-bigquery` speaks it, over UDP's `event_store.events`
(https://cloud.google.com/bigquery/docs/reference/rest).

Served: the OAuth token endpoint of a throwaway service account (`POST /token`, JWT-bearer grant, signature
checked), `jobs.insert` (and its dry run), `jobs.get`, `jobs.getQueryResults` (with paging) and `jobs.query`.
The SQL a job sends is really evaluated, as of the simulator's clock: sandbox/bigquery_sql.py translates it to
DuckDB and runs it over the generated Caliper events.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from sandbox.bigquery_sql import LOCATION, BigQueryError, EventStore, QueryResult, encode_cell
from sandbox.httpapp import App, Handler, Request, Response, json_response
from sandbox.httpserver import ServerOptions, SimServer
from sandbox.media_data import MediaData, SimClock, media_data_for

DEFAULT_JOB_PROJECT = "umich-mivideo-sim"
DEFAULT_UDP_PROJECT = "udp-umich-prod"
TOKEN_SECONDS = 3600
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


# ---------------------------------------------------------------- service account
@dataclass(frozen=True)
class ServiceAccountKey:
    project_id: str
    client_email: str
    private_key_id: str
    public_key_pem: str = field(repr=False)


def write_service_account_file(path: Path | str, token_uri: str, *,
                               project_id: str = DEFAULT_JOB_PROJECT) -> ServiceAccountKey:
    """Write a throwaway service-account key file whose token endpoint is `token_uri`; trust its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    key_id = secrets.token_hex(20)
    email = f"mivideo-job@{project_id}.iam.gserviceaccount.com"
    document = {
        "type": "service_account", "project_id": project_id, "private_key_id": key_id,
        "private_key": private_pem, "client_email": email, "client_id": str(secrets.randbits(64)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }
    target = Path(path)
    target.write_text(json.dumps(document, indent=2))
    target.chmod(0o600)
    return ServiceAccountKey(project_id, email, key_id, public_pem)


# ---------------------------------------------------------------- jobs and tokens
@dataclass
class Job:
    project: str
    job_id: str
    query: dict[str, Any]
    created: datetime
    result: QueryResult | None = None
    error: BigQueryError | None = None
    polls_left: int = 0
    user_email: str = ""


class BigQuerySimulator:
    def __init__(self, data: MediaData, *, clock: SimClock | None = None, udp_project: str = DEFAULT_UDP_PROJECT,
                 page_rows: int = 500, running_polls: int = 0) -> None:
        self.clock = clock or SimClock()
        self.udp_project, self.page_rows, self.running_polls = udp_project, page_rows, running_polls
        self.store = EventStore(data)
        self._lock = threading.Lock()
        self._keys: dict[str, ServiceAccountKey] = {}
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self.jobs: dict[tuple[str, str], Job] = {}
        self.queries: list[str] = []               # every SQL text received, for tests
        self.dry_runs: list[str] = []              # SQL texts only validated (configuration.dryRun)

    def trust(self, key: ServiceAccountKey) -> None:
        with self._lock:
            self._keys[key.client_email] = key

    # ---- OAuth
    def issue_token(self, form: Mapping[str, list[str]], token_uri: str) -> str:
        assertion = (form.get("assertion") or [""])[-1]
        if (form.get("grant_type") or [""])[-1] != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise BigQueryError(400, "unsupported_grant_type", "Invalid grant_type")
        try:
            claims = jwt.decode(assertion, verify=False)
            key = self._keys.get(str(claims.get("iss")))
            if key is None:
                raise BigQueryError(400, "invalid_grant", "Invalid grant: account not found")
            # google-auth addresses the assertion to Google's token URI even when the key file names another.
            jwt.decode(assertion, certs=key.public_key_pem, audience=[token_uri, GOOGLE_TOKEN_URI],
                       clock_skew_in_seconds=30)
        except (auth_exceptions.GoogleAuthError, ValueError) as exc:
            raise BigQueryError(400, "invalid_grant", "Invalid JWT Signature.") from exc
        token = "ya29.sim-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (key.client_email, datetime.now(UTC) + timedelta(seconds=TOKEN_SECONDS))
        return token

    def authorize(self, request: Request, project: str) -> str:
        token = request.bearer_token()
        with self._lock:
            email, expires = self._tokens.get(token or "", ("", datetime.min.replace(tzinfo=UTC)))
            key = self._keys.get(email)
        if key is None or expires <= datetime.now(UTC):
            raise BigQueryError(401, "required", "Request is missing required authentication credential. "
                                "Expected OAuth 2 access token, login cookie or other valid authentication credential.")
        if project != key.project_id:
            raise BigQueryError(403, "accessDenied", f"Access Denied: Project {project}: User does not have "
                                f"bigquery.jobs.create permission in project {project}.")
        return email

    # ---- jobs
    def insert(self, project: str, body: Mapping[str, Any], email: str) -> Job:
        config = _query_configuration(body)
        job_id = body.get("jobReference", {}).get("jobId") or f"job_{uuid.uuid4().hex}"
        now = self.clock.now()
        job = Job(project, job_id, dict(config), now, polls_left=self.running_polls, user_email=email)
        with self._lock:
            if (project, job_id) in self.jobs:
                raise BigQueryError(409, "duplicate", f"Already Exists: Job {project}:{LOCATION}.{job_id}")
            self.jobs[(project, job_id)] = job
            self.queries.append(config["query"])
        try:
            job.result = self.store.run(config["query"], config.get("queryParameters", []), job_project=project,
                                        udp_project=self.udp_project, now=now)
        except BigQueryError as exc:
            job.error = exc
        return job

    def dry_run(self, project: str, body: Mapping[str, Any], email: str) -> dict[str, Any]:
        """configuration.dryRun (REST reference, Job resource, JobConfiguration.dryRun): the job is not run nor
        stored; a valid query gets a DONE job with statistics and no jobId, an invalid one the error a run would
        get. This simulator does not model storage, so it reports 0 bytes processed."""
        config = _query_configuration(body)
        self.store.run(config["query"], config.get("queryParameters", []), job_project=project,
                       udp_project=self.udp_project, now=self.clock.now(), explain_only=True)
        with self._lock:
            self.dry_runs.append(config["query"])
        millis = str(int(self.clock.now().timestamp() * 1000))
        return {"kind": "bigquery#job", "user_email": email,
                "jobReference": {"projectId": project, "location": LOCATION},
                "configuration": {"jobType": "QUERY", "dryRun": True, "query": dict(config)},
                "status": {"state": "DONE"},
                "statistics": {"creationTime": millis, "totalBytesProcessed": "0",
                               "query": {"totalBytesProcessed": "0", "statementType": "SELECT", "cacheHit": False}}}

    def get(self, project: str, job_id: str) -> Job:
        with self._lock:
            job = self.jobs.get((project, job_id))
        if job is None:
            raise BigQueryError(404, "notFound", f"Not found: Job {project}:{job_id}")
        return job

    def poll(self, job: Job) -> bool:
        """True when the job is done; each poll of a running job brings it closer to done."""
        with self._lock:
            if job.polls_left > 0:
                job.polls_left -= 1
                return False
            return True

    def job_resource(self, job: Job, done: bool) -> dict[str, Any]:
        millis = str(int(job.created.timestamp() * 1000))
        status: dict[str, Any] = {"state": "DONE" if done else "RUNNING"}
        if done and job.error is not None:
            status.update(errorResult=job.error.error_result(), errors=[job.error.error_result()])
        return {
            "kind": "bigquery#job", "id": f"{job.project}:{LOCATION}.{job.job_id}", "user_email": job.user_email,
            "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": LOCATION},
            "configuration": {"jobType": "QUERY", "query": job.query}, "status": status,
            "statistics": {"creationTime": millis, "startTime": millis,
                           "query": {"statementType": "SELECT", "totalBytesProcessed": "0", "cacheHit": False}},
        }

    def query_results(self, job: Job, query: Mapping[str, list[str]]) -> dict[str, Any]:
        reference = {"projectId": job.project, "jobId": job.job_id, "location": LOCATION}
        if not self.poll(job):
            return {"kind": "bigquery#getQueryResultsResponse", "jobReference": reference, "jobComplete": False}
        if job.error is not None:
            raise job.error
        assert job.result is not None
        rows, fields = job.result.rows, job.result.fields
        answer: dict[str, Any] = {"kind": "bigquery#getQueryResultsResponse", "jobReference": reference,
                                  "jobComplete": True, "schema": {"fields": fields}, "totalRows": str(len(rows)),
                                  "totalBytesProcessed": "0", "cacheHit": False}
        start = _page_start(query)
        limit = min(int(_last(query, "maxResults") or self.page_rows), self.page_rows)
        if limit == 0:
            return answer
        int64 = (_last(query, "formatOptions.useInt64Timestamp") or "").lower() == "true"
        page = rows[start:start + limit]
        answer["rows"] = [{"f": [{"v": encode_cell(v, f["type"], int64)} for v, f in zip(row, fields, strict=True)]}
                          for row in page]
        if start + limit < len(rows):
            answer["pageToken"] = base64.urlsafe_b64encode(f"{job.job_id}:{start + limit}".encode()).decode()
        return answer


def _query_configuration(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """A job's configuration.query, refused unless it has a query in standard SQL."""
    config = body.get("configuration", {}).get("query")
    if not config or not config.get("query"):
        raise BigQueryError(400, "invalid", "Required parameter is missing: configuration.query")
    if config.get("useLegacySql", True) is not False:
        raise BigQueryError(400, "invalidQuery", "Simulator supports standard SQL only (useLegacySql=false)")
    return config


def _last(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _page_start(query: Mapping[str, list[str]]) -> int:
    token = _last(query, "pageToken")
    if token:
        try:
            return int(base64.urlsafe_b64decode(token.encode()).decode().rsplit(":", 1)[1])
        except (ValueError, IndexError) as exc:
            raise BigQueryError(400, "invalid", "Invalid page token") from exc
    return int(_last(query, "startIndex") or 0)


# ---------------------------------------------------------------- HTTP
def _error(exc: BigQueryError) -> Response:
    return json_response(exc.body(), status=exc.status)


def _api_errors(*, json_body: bool = False) -> Callable[[Handler], Handler]:
    """A handler whose BigQueryError is answered as Google's error JSON; with `json_body`, a ValueError (a body
    that is not JSON) is answered as BigQuery's parseError."""
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def answer(request: Request, **params: Any) -> Response:
            try:
                return handler(request, **params)
            except BigQueryError as exc:
                return _error(exc)
            except ValueError:
                if not json_body:
                    raise
                return _error(BigQueryError(400, "parseError", "Parse Error"))
        return answer
    return wrap


def build_bigquery_app(sim: BigQuerySimulator) -> App:
    app = App()

    # Google's OAuth server is another service: the injected faults model the BigQuery API only (and
    # google-auth fails with a TypeError, not a retriable error, on a truncated token response).
    @app.route("POST", "/token", faultable=False)
    def token(request: Request) -> Response:
        try:
            access = sim.issue_token(request.form(), f"{request.base_url}/token")
        except BigQueryError as exc:
            return json_response({"error": exc.reason, "error_description": exc.message}, status=400)
        return json_response({"access_token": access, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"})

    @app.route("POST", "/bigquery/v2/projects/{project}/jobs")
    @_api_errors(json_body=True)
    def jobs_insert(request: Request, project: str) -> Response:
        body = request.json() or {}
        email = sim.authorize(request, project)
        if body.get("configuration", {}).get("dryRun") is True:
            return json_response(sim.dry_run(project, body, email))
        job = sim.insert(project, body, email)
        return json_response(sim.job_resource(job, done=job.polls_left == 0))

    @app.route("GET", "/bigquery/v2/projects/{project}/jobs/{job_id}")
    @_api_errors()
    def jobs_get(request: Request, project: str, job_id: str) -> Response:
        sim.authorize(request, project)
        job = sim.get(project, job_id)
        return json_response(sim.job_resource(job, done=sim.poll(job)))

    @app.route("GET", "/bigquery/v2/projects/{project}/queries/{job_id}")
    @_api_errors()
    def get_query_results(request: Request, project: str, job_id: str) -> Response:
        sim.authorize(request, project)
        answer = sim.query_results(sim.get(project, job_id), request.query)
        return json_response(answer, records=len(answer.get("rows", [])))

    @app.route("POST", "/bigquery/v2/projects/{project}/queries")
    @_api_errors(json_body=True)
    def jobs_query(request: Request, project: str) -> Response:
        body = request.json() or {}
        email = sim.authorize(request, project)
        query = {k: body[k] for k in ("query", "useLegacySql", "parameterMode", "queryParameters") if k in body}
        job = sim.insert(project, {"configuration": {"query": query}}, email)
        flags = {"formatOptions.useInt64Timestamp": [str(body.get("formatOptions", {}).get(
            "useInt64Timestamp", False))]}
        answer = sim.query_results(job, flags)
        return json_response(answer, records=len(answer.get("rows", [])))

    return app


def start_bigquery_server(data: MediaData, *, clock: SimClock | None = None,
                          udp_project: str = DEFAULT_UDP_PROJECT, page_rows: int = 500, running_polls: int = 0,
                          server_options: ServerOptions | None = None) -> tuple[SimServer, BigQuerySimulator]:
    sim = BigQuerySimulator(data, clock=clock, udp_project=udp_project, page_rows=page_rows,
                            running_polls=running_polls)
    server = SimServer(build_bigquery_app(sim), name="bigquery", options=server_options).start()
    return server, sim


def bigquery_service_factory(university: Any, options: Mapping[str, Any] | None = None) -> tuple[SimServer, dict]:
    """For sandbox/runner.py: a started BigQuery simulator, a trusted key file, and the config keys.

    The key file is written into `options["config_dir"]` and named by its file name; without a config
    directory it goes to a fresh temporary directory and is named by its absolute path (which resolving
    it inside any config directory leaves unchanged).
    """
    options = dict(options or {})
    data = media_data_for(university)
    server, sim = start_bigquery_server(data, clock=options.get("clock"),
                                        page_rows=int(options.get("page_rows", 500)),
                                        running_polls=int(options.get("running_polls", 0)),
                                        server_options=options.get("server_options"))
    config_dir = options.get("config_dir")
    directory = Path(config_dir) if config_dir else Path(tempfile.mkdtemp(prefix="bigquery-sim-"))
    key_file = directory / str(options.get("key_file_name", "udp_service_account.json"))
    sim.trust(write_service_account_file(key_file, f"{server.url}/token"))
    config = {"MIVIDEO": {"bigquery_api_endpoint": server.url,
                          "udp_service_account_json_filename": key_file.name if config_dir else str(key_file),
                          "udp_events_project": sim.udp_project, "kaf_ed_apps": list(data.kaf_apps),
                          "default_last_timestamp": data.default_last_timestamp.isoformat()}}
    return server, config
