"""The BigQuery simulator, driven by the real google-cloud-bigquery client, and the events it serves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlglot
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request as AuthRequest
from google.cloud import bigquery
from google.oauth2 import service_account

from mivideo import queries
from sandbox import media_data
from sandbox.bigquery_sim import (
    DEFAULT_UDP_PROJECT,
    BigQuerySimulator,
    start_bigquery_server,
    write_service_account_file,
)
from sandbox.bigquery_sql import _bigquery_json_path, encode_cell
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.media_data import MediaData, SimClock

SEED = 11
NOW = datetime(2020, 4, 14, 16, 45, tzinfo=UTC)
MIDNIGHT = NOW.replace(hour=0, minute=0)
SQL = queries.media_started_hourly(DEFAULT_UDP_PROJECT)
pytestmark = pytest.mark.usefixtures("reset_clock")   # the clock goes back to NOW before every test


@pytest.fixture(scope="module")
def sim(media: MediaData, clock: SimClock) -> Iterator[tuple[SimServer, BigQuerySimulator]]:
    server, simulator = start_bigquery_server(media, clock=clock, page_rows=300, running_polls=2,
                                              server_options=ServerOptions(cost=CostModel(0, 0)))
    yield server, simulator
    server.stop()


@pytest.fixture(scope="module")
def key_file(sim: tuple[SimServer, BigQuerySimulator], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bq") / "sa.json"
    sim[1].trust(write_service_account_file(path, f"{sim[0].url}/token"))
    return path


def make_client(url: str, key_file: Path, project: str | None = None) -> bigquery.Client:
    credentials = service_account.Credentials.from_service_account_file(
        str(key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return bigquery.Client(project=project or credentials.project_id, credentials=credentials,
                           client_options=ClientOptions(api_endpoint=url))


@pytest.fixture(scope="module")
def client(sim: tuple[SimServer, BigQuerySimulator], key_file: Path) -> bigquery.Client:
    return make_client(sim[0].url, key_file)


def run(client: bigquery.Client, sql: str = SQL, start: datetime = media_data.DEFAULT_LAST_TIMESTAMP,
        apps: tuple[str, ...] = media_data.UNIVERSITY_KAF_APPS) -> dict[tuple[str, int], tuple[datetime, int]]:
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("startTime", "TIMESTAMP", start),
        bigquery.ArrayQueryParameter("kafApps", "STRING", list(apps)),
    ])
    rows = client.query(sql, job_config=config).result()     # the library's decoded rows (no pyarrow needed)
    return {(row.event_hour_utc, int(row.course_id)): (row.event_time_utc_latest, int(row.event_count))
            for row in rows}


def expected(media: MediaData, start: datetime = media_data.DEFAULT_LAST_TIMESTAMP, now: datetime = NOW,
             apps: tuple[str, ...] = media_data.UNIVERSITY_KAF_APPS) -> dict:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return media_data.expected_hourly(media, after=start, before=midnight, visible_at=now, apps=apps)


# ---------------------------------------------------------------- the generated events
def test_generated_events_cover_the_awkward_cases(media: MediaData) -> None:
    events = media.events
    assert len(events) > 30_000
    assert set(media_data.UNIVERSITY_KAF_APPS) < {e.ed_app for e in events}
    assert len({e.ed_app for e in events}) >= 4
    assert len({(e.type, e.action) for e in events}) >= 6
    assert sum(1 for e in events if e.course_id is None and e.type == "MediaEvent") > 1_000
    assert any('"kaf": {"course_id"' in e.event for e in events)          # the mis-split path would read this
    assert len({e.event_time.date() for e in events}) >= 60 and len({e.event_time.hour for e in events}) == 24
    assert any(e.event_time == media_data.DEFAULT_LAST_TIMESTAMP for e in events)
    assert any(e.event_time == MIDNIGHT and e.course_id is not None for e in events)


# ---------------------------------------------------------------- the job's query, really evaluated
def test_job_query_gives_the_expected_rows_with_paging_and_polling(sim: tuple[SimServer, BigQuerySimulator],
                                                                  client: bigquery.Client, media: MediaData) -> None:
    sim[0].stats.reset()
    got = run(client)
    want = expected(media)
    assert len(want) > 600 and got == want
    assert any(count > 1 for _, count in got.values())
    calls = sim[0].stats.snapshot()["requests_by_endpoint"]
    assert calls["GET /bigquery/v2/projects/{project}/queries/{job_id}"] >= 1 + len(want) // 300   # row pages
    assert calls["GET /bigquery/v2/projects/{project}/jobs/{job_id}"] >= 2                          # polled


def test_start_time_parameter_and_the_clock_bound(client: bigquery.Client, media: MediaData, clock: SimClock) -> None:
    later = datetime(2020, 4, 1, 10, 30, 15, 250_000, tzinfo=UTC)
    before = run(client, start=later)
    assert before == expected(media, start=later) and len(before) < len(expected(media))
    clock.set(NOW + timedelta(days=5))                          # "today" moves: more complete days
    moved = run(client, start=later)
    assert moved == expected(media, start=later, now=NOW + timedelta(days=5)) and len(moved) > len(before)
    assert max(latest for latest, _ in moved.values()) < (NOW + timedelta(days=5)).replace(hour=0, minute=0)


def test_only_the_listed_apps_count(client: bigquery.Client, media: MediaData) -> None:
    one_app = media_data.UNIVERSITY_KAF_APPS[:1]
    assert run(client, apps=one_app) == expected(media, apps=one_app) != expected(media)


def test_json_path_with_a_colon_is_one_key(sim: tuple[SimServer, BigQuerySimulator], client: bigquery.Client) -> None:
    assert _bigquery_json_path("$.object.extensions.kaf:course_id") == "$.object.extensions['kaf:course_id']"
    assert _bigquery_json_path("$.a['b.c'][0].d") == "$.a['b.c'][0].d"
    # sqlglot alone splits the key at the colon, which reads the decoy `{"kaf": {"course_id": ...}}` objects.
    naive = sqlglot.transpile(SQL, read="bigquery", write="duckdb")[0]
    assert "kaf.course_id" in naive
    translated = sim[1].store.run(SQL, [{"name": "startTime", "parameterType": {"type": "TIMESTAMP"},
                                         "parameterValue": {"value": "2020-03-01 00:00:00+00:00"}},
                                        {"name": "kafApps", "parameterType": {"type": "ARRAY",
                                                                              "arrayType": {"type": "STRING"}},
                                         "parameterValue": {"arrayValues": [{"value": a} for a in
                                                                            media_data.UNIVERSITY_KAF_APPS]}}],
                                  job_project="p", udp_project=DEFAULT_UDP_PROJECT, now=NOW)
    assert translated.rows and {f["name"]: f["type"] for f in translated.fields} == {
        "event_hour_utc": "STRING", "course_id": "INTEGER", "event_time_utc_latest": "TIMESTAMP",
        "event_count": "INTEGER"}


def test_query_and_wait_path(client: bigquery.Client, media: MediaData) -> None:
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("startTime", "TIMESTAMP", datetime(2020, 4, 10, tzinfo=UTC)),
        bigquery.ArrayQueryParameter("kafApps", "STRING", list(media_data.UNIVERSITY_KAF_APPS))])
    rows = list(client.query_and_wait(SQL, job_config=config))
    assert {(r["event_hour_utc"], r["course_id"]): (r["event_time_utc_latest"], r["event_count"]) for r in rows} \
        == expected(media, start=datetime(2020, 4, 10, tzinfo=UTC))


# ---------------------------------------------------------------- errors
def test_query_errors_are_bigquery_errors(client: bigquery.Client) -> None:
    with pytest.raises(api_exceptions.BadRequest, match="Query parameter 'startTime' not found"):
        client.query(SQL, job_config=bigquery.QueryJobConfig(query_parameters=[
            bigquery.ArrayQueryParameter("kafApps", "STRING", ["x"])])).result()
    with pytest.raises(api_exceptions.NotFound, match="udp-other:event_store"):
        client.query("SELECT id FROM `udp-other.event_store.events`").result()
    with pytest.raises(api_exceptions.NotFound, match="Table"):
        client.query(f"SELECT id FROM `{DEFAULT_UDP_PROJECT}.event_store.expanded`").result()
    with pytest.raises(api_exceptions.BadRequest, match="Syntax error"):
        client.query("SELEC 1 FROM").result()


def test_authentication_is_real(sim: tuple[SimServer, BigQuerySimulator], key_file: Path, tmp_path: Path) -> None:
    untrusted = tmp_path / "untrusted.json"
    write_service_account_file(untrusted, f"{sim[0].url}/token")               # never trusted by the simulator
    credentials = service_account.Credentials.from_service_account_file(str(untrusted), scopes=["x"])
    with pytest.raises(auth_exceptions.RefreshError, match="invalid_grant"):
        credentials.refresh(AuthRequest())
    anonymous = requests.post(f"{sim[0].url}/bigquery/v2/projects/umich-mivideo-sim/jobs", json={}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
    with pytest.raises(api_exceptions.Forbidden, match="bigquery.jobs.create"):
        make_client(sim[0].url, key_file, project="someone-elses-project").query("SELECT 1").result()


def test_timestamps_encode_as_the_client_asks() -> None:
    moment = datetime(2020, 1, 15, 14, 3, 22, 500_000, tzinfo=UTC)
    assert encode_cell(moment, "TIMESTAMP", True) == "1579097002500000"
    assert float(encode_cell(moment, "TIMESTAMP", False)) == pytest.approx(1579097002.5)
    assert encode_cell(None, "TIMESTAMP", True) is None and encode_cell(True, "BOOLEAN", True) == "true"
