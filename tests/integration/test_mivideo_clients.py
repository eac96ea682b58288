"""The MIVIDEO clients against the simulators over HTTP: faults, expiring sessions, secrets kept out of logs."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clients.bigquery import BigQueryReader, BigQuerySettings, create_bigquery_client
from clients.kaltura import KalturaMediaClient, KalturaSettings
from clients.retry import RetryPolicy
from mivideo import queries
from sandbox import media_data
from sandbox.bigquery_sim import start_bigquery_server, write_service_account_file
from sandbox.faults import FaultOptions
from sandbox.httpapp import App, Response, json_response
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.kaltura_sim import KalturaSimOptions, KalturaSimulator, start_kaltura_server
from sandbox.media_data import MediaData, SimClock
from vocab import FatalSourceError, RetriableSourceError

pytestmark = pytest.mark.integration

SECRET = "kaltura-secret-never-logged"
NOW = datetime(2020, 3, 12, 8, 0, tzinfo=UTC)          # a few thousand entries exist by then
ROOT = media_data.CATEGORY_ROOT
FROM_DEFAULT = int(media_data.DEFAULT_LAST_TIMESTAMP.timestamp())
# Faults are independent draws (a request may fail any number of times in a row): retries run on a time budget.
FAULTY = ServerOptions(cost=CostModel(0, 0), seed=5,
                       faults=FaultOptions(http500=0.12, http502_503=0.12, reset=0.1, bad_json=0.08))


@pytest.fixture(scope="module")
def media() -> MediaData:
    return media_data.generate_media(29, n_entries=12_000, n_events=8_000)


def kaltura_client(url: str, partner_id: int, attempts: int = 4) -> KalturaMediaClient:
    return KalturaMediaClient(KalturaSettings(url, partner_id, SECRET,
                                              RetryPolicy(max_attempts=attempts, budget_seconds=30)),
                              sleep=lambda _: None)


@pytest.fixture
def kaltura(media: MediaData, request: pytest.FixtureRequest) -> Iterator[tuple[SimServer, KalturaSimulator]]:
    options = getattr(request, "param", {})
    server, sim = start_kaltura_server(media, KalturaSimOptions(media.partner_id, SECRET, **options),
                                       clock=SimClock(NOW), server_options=FAULTY)
    yield server, sim
    server.stop()


def test_kaltura_paging_survives_faults(kaltura: tuple[SimServer, KalturaSimulator], media: MediaData,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = kaltura_client(kaltura[0].url, media.partner_id)
    pages = list(client.iter_media_pages(created_from=FROM_DEFAULT, categories_full_name_in=ROOT, page_size=50))
    ids = [entry["id"] for page in pages for entry in page]
    expected = media_data.listed_entries(media, created_from=FROM_DEFAULT, visible_at=int(NOW.timestamp()),
                                         prefix=ROOT)
    assert ids == [e.id for e in expected] and len(ids) > 1_000
    assert sum(kaltura[0].stats.snapshot()["faults"].values()) >= 1     # ~30 requests at a 34% fault rate
    assert client.calls > len(pages) + 1
    assert SECRET not in caplog.text


@pytest.mark.parametrize("kaltura", [{"max_ks_seconds": 3600}], indirect=True)
def test_expired_session_is_renewed(kaltura: tuple[SimServer, KalturaSimulator], media: MediaData,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server, sim = kaltura
    client = kaltura_client(server.url, media.partner_id)
    first = client.list_media_page(created_from=FROM_DEFAULT, categories_full_name_in=ROOT, exclude_ids=(),
                                   page_index=1, page_size=5)
    sim.clock.advance(timedelta(hours=2))                # the server capped the KS at one hour
    second = client.list_media_page(created_from=FROM_DEFAULT, categories_full_name_in=ROOT, exclude_ids=(),
                                    page_index=2, page_size=5)
    assert len(first.entries) == len(second.entries) == 5
    assert sim.calls["session.start"] == 2
    assert "INVALID_KS" in caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize("kaltura", [{"max_ks_seconds": 0}], indirect=True)
def test_a_session_refused_twice_is_fatal(kaltura: tuple[SimServer, KalturaSimulator], media: MediaData) -> None:
    client = kaltura_client(kaltura[0].url, media.partner_id)
    with pytest.raises(FatalSourceError, match="INVALID_KS") as failure:
        client.list_media_page(created_from=0, categories_full_name_in=ROOT, exclude_ids=(), page_index=1)
    assert "Invalid KS [" not in str(failure.value)


def test_wrong_secret_is_fatal(kaltura: tuple[SimServer, KalturaSimulator], media: MediaData) -> None:
    client = KalturaMediaClient(KalturaSettings(kaltura[0].url, media.partner_id, "wrong"), sleep=lambda _: None)
    with pytest.raises(FatalSourceError, match="START_SESSION_ERROR"):
        client.list_media_page(created_from=0, categories_full_name_in=ROOT, exclude_ids=(), page_index=1)


@pytest.fixture
def bigquery_reader(media: MediaData, tmp_path: Path) -> Iterator[tuple[BigQueryReader, SimServer]]:
    # No truncated bodies here: the library does not retry those, so each one re-runs the whole query
    # (BigQueryReader's attempts); with ~25 requests per query that would need many attempts.
    faults = FaultOptions(http500=0.15, http502_503=0.15, reset=0.12)
    server, sim = start_bigquery_server(media, clock=SimClock(NOW), page_rows=10, running_polls=2,
                                        server_options=ServerOptions(cost=CostModel(0, 0), faults=faults))
    key_file = tmp_path / "sa.json"
    sim.trust(write_service_account_file(key_file, f"{server.url}/token"))
    settings = BigQuerySettings(key_file, server.url,
                                policy=RetryPolicy(max_attempts=4, budget_seconds=30, backoff_initial=0.01))
    reader = BigQueryReader(create_bigquery_client(settings), settings, sleep=lambda _: None)
    yield reader, server
    reader.close()
    server.stop()


def test_bigquery_query_survives_faults(bigquery_reader: tuple[BigQueryReader, SimServer], media: MediaData,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reader, server = bigquery_reader
    frame = reader.query_df(queries.media_started_hourly("udp-umich-prod"),
                            {"startTime": media.default_last_timestamp, "kafApps": list(media.kaf_apps)})
    got = {(r.event_hour_utc, int(r.course_id)): (r.event_time_utc_latest.to_pydatetime(), int(r.event_count))
           for r in frame.itertuples()}
    assert got == media_data.expected_hourly(media, after=media.default_last_timestamp,
                                             before=NOW.replace(hour=0), visible_at=NOW, apps=media.kaf_apps)
    assert sum(server.stats.snapshot()["faults"].values()) >= 1     # ~25 requests at a 42% fault rate
    assert "ya29.sim-" not in caplog.text and "PRIVATE KEY" not in caplog.text


def test_bigquery_unreachable_is_retriable(tmp_path: Path, media: MediaData) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    key_file = tmp_path / "sa.json"
    write_service_account_file(key_file, f"{closed}/token")
    settings = BigQuerySettings(key_file, closed, policy=RetryPolicy(max_attempts=2, budget_seconds=1,
                                                                     backoff_initial=0.01))
    reader = BigQueryReader(create_bigquery_client(settings), settings, sleep=lambda _: None)
    with pytest.raises(RetriableSourceError):
        reader.query_df("SELECT 1", {})


# ---- credentials never follow a redirect to another host ----
def redirecting_servers(path: str) -> tuple[SimServer, SimServer]:
    """A server answering every POST to `path` with a 307 to a second server, which records what reaches it."""
    thief = App()
    thief.add_route("POST", "/{rest:path}", lambda request, rest: json_response({"stolen": True}))
    elsewhere = SimServer(thief, name="elsewhere").start()
    front = App()
    front.add_route("POST", path, lambda request: Response(307, b"", {"Location": f"{elsewhere.url}{path}"}))
    return SimServer(front, name="front").start(), elsewhere


def test_the_kaltura_secret_never_follows_a_redirect() -> None:
    front, elsewhere = redirecting_servers("/api_v3/service/session/action/start")
    try:
        client = kaltura_client(front.url, 42)
        with pytest.raises(FatalSourceError) as refused:
            client.list_media_page(created_from=0, categories_full_name_in=ROOT, exclude_ids=(), page_index=1)
        message = str(refused.value)
        assert "307 redirect from 127.0.0.1" in message and "not followed" in message and SECRET not in message
        assert elsewhere.stats.snapshot()["requests"] == 0
    finally:
        front.stop()
        elsewhere.stop()


def test_the_service_account_assertion_never_follows_a_redirect(tmp_path: Path) -> None:
    front, elsewhere = redirecting_servers("/token")
    try:
        key_file = tmp_path / "sa.json"
        write_service_account_file(key_file, f"{front.url}/token")
        settings = BigQuerySettings(key_file, front.url, policy=RetryPolicy(max_attempts=2, budget_seconds=1,
                                                                           backoff_initial=0.01))
        reader = BigQueryReader(create_bigquery_client(settings), settings, sleep=lambda _: None)
        with pytest.raises(FatalSourceError, match="redirect was not followed"):
            reader.query_df("SELECT 1", {})
        assert elsewhere.stats.snapshot()["requests"] == 0
    finally:
        front.stop()
        elsewhere.stop()
