"""MIVIDEO end to end: the real KalturaApiClient and google-cloud-bigquery against the simulators, MariaDB.

Expected rows come from sandbox.media_data (the generated records and the services' rules), never from
the job's code. The clock of both simulators decides what exists, so moving it forward is "new data".
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from clients.bigquery import BigQueryReader, BigQuerySettings, create_bigquery_client
from clients.kaltura import KalturaMediaClient, KalturaSettings
from clients.retry import RetryPolicy
from mivideo import mivideo_extract
from sandbox import media_data
from sandbox.bigquery_sim import BigQuerySimulator, start_bigquery_server, write_service_account_file
from sandbox.faults import FaultOptions
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.kaltura_sim import KalturaSimOptions, KalturaSimulator, start_kaltura_server
from sandbox.media_data import MediaData, SimClock
from sandbox.outages import OutageOptions
from vocab import JobError, ValidDataSourceName

pytestmark = pytest.mark.integration

SEED = 11                                   # the sandbox tests' seed: generated once per session
SECRET = "kaltura-admin-secret-for-tests"
PREFIX = media_data.CATEGORY_ROOT
FIRST_RUN = datetime(2020, 4, 21, 13, 7, tzinfo=UTC)
LATER_RUN = datetime(2020, 4, 30, 9, 30, tzinfo=UTC)
FAST = ServerOptions(cost=CostModel(overhead_ms=0, per_record_ms=0))


@pytest.fixture(scope="module")
def media() -> MediaData:
    return media_data.generate_media(SEED)


@pytest.fixture(scope="module")
def clock() -> SimClock:
    return SimClock(FIRST_RUN)


@pytest.fixture(scope="module")
def kaltura_sim(media: MediaData, clock: SimClock) -> Iterator[tuple[SimServer, KalturaSimulator]]:
    server, sim = start_kaltura_server(media, KalturaSimOptions(media.partner_id, SECRET), clock=clock,
                                       server_options=FAST)
    yield server, sim
    server.stop()


@pytest.fixture(scope="module")
def bigquery_sim(media: MediaData, clock: SimClock) -> Iterator[tuple[SimServer, BigQuerySimulator]]:
    server, sim = start_bigquery_server(media, clock=clock, page_rows=400, running_polls=1, server_options=FAST)
    yield server, sim
    server.stop()


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory, bigquery_sim: tuple[SimServer, BigQuerySimulator]) -> Path:
    directory = tmp_path_factory.mktemp("mivideo-config")
    server, sim = bigquery_sim
    sim.trust(write_service_account_file(directory / "udp_sa.json", f"{server.url}/token"))
    return directory


def make_env(kaltura_url: str, bigquery_url: str, media: MediaData, **overrides: Any) -> dict[str, Any]:
    mivideo = {
        "udp_service_account_json_filename": "udp_sa.json",
        "default_last_timestamp": media.default_last_timestamp.isoformat(),
        "kaltura_partner_id": media.partner_id, "kaltura_user_secret": SECRET,
        "kaltura_categories_full_name_in": PREFIX, "kaltura_service_url": kaltura_url,
        "bigquery_api_endpoint": bigquery_url, "udp_events_project": "udp-umich-prod",
        "kaf_ed_apps": list(media.kaf_apps), **overrides,
    }
    return {"MAX_REQ_ATTEMPTS": 2, "RETRY_BUDGET_SECONDS": 0, "MIVIDEO": mivideo, "INVENTORY_DB": {}}


@pytest.fixture
def env(kaltura_sim: tuple[SimServer, KalturaSimulator], bigquery_sim: tuple[SimServer, BigQuerySimulator],
        media: MediaData) -> dict[str, Any]:
    return make_env(kaltura_sim[0].url, bigquery_sim[0].url, media)


def kaltura_client(env: dict[str, Any]) -> KalturaMediaClient:
    section = env["MIVIDEO"]
    return KalturaMediaClient(KalturaSettings(section["kaltura_service_url"], section["kaltura_partner_id"],
                                              section["kaltura_user_secret"],
                                              RetryPolicy(max_attempts=2, budget_seconds=0, backoff_initial=0.01)),
                              sleep=lambda _: None)


# ---------------------------------------------------------------- reading the tables and the expectations
def hourly_rows(engine: sa.Engine) -> dict[tuple[str, int], tuple[datetime, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_hour_utc, course_id, event_time_utc_latest, event_count, id "
                                    "FROM mivideo_media_started_hourly")).all()
    table = {(hour, course): (latest, count, row_id) for hour, course, latest, count, row_id in rows}
    assert len(table) == len(rows), "an hour and course was stored twice"
    return table


def created_rows(engine: sa.Engine) -> dict[str, tuple[datetime, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, created_at, name, duration FROM mivideo_media_created")).all()
    return {row_id: (created, name, duration) for row_id, created, name, duration in rows}


def course_rows(engine: sa.Engine) -> set[tuple[str, int, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT media_id, course_id, in_context FROM mivideo_media_courses")).all()
    return {(media_id, course, bool(flag)) for media_id, course, flag in rows}


def expected_hourly(media: MediaData, now: datetime) -> dict[tuple[str, int], tuple[datetime, int]]:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    found = media_data.expected_hourly(media, after=media.default_last_timestamp, before=midnight,
                                       visible_at=now, apps=media.kaf_apps)
    # The column is DATETIME: whole seconds, naive UTC.
    return {key: (latest.replace(microsecond=0, tzinfo=None), count) for key, (latest, count) in found.items()}


def expected_tables(media: MediaData, now: datetime) -> tuple[dict, set]:
    bounds = {"created_from": int(media.default_last_timestamp.timestamp()), "visible_at": int(now.timestamp()),
              "prefix": PREFIX}
    return media_data.expected_media_created(media, **bounds), media_data.expected_media_courses(media, **bounds)


def without_ids(hourly: dict[tuple[str, int], tuple[datetime, int, int]]) -> dict[tuple[str, int], tuple]:
    return {key: (latest, count) for key, (latest, count, _) in hourly.items()}


# ---------------------------------------------------------------- the scenario
def test_first_run_rerun_and_new_data(env: dict[str, Any], migrated_engine: sa.Engine, config_dir: Path,
                                      media: MediaData, clock: SimClock,
                                      kaltura_sim: tuple[SimServer, KalturaSimulator],
                                      bigquery_sim: tuple[SimServer, BigQuerySimulator]) -> None:
    clock.set(FIRST_RUN)
    want_created, want_courses = expected_tables(media, FIRST_RUN)
    assert len(want_created) > 25_000           # so the 10,000-match limit is crossed at least twice

    # 1. First run: everything since the default timestamp.
    client = kaltura_client(env)
    statuses = mivideo_extract.main(env, engine=migrated_engine, config_dir=config_dir, kaltura=client)
    assert {s.data_source_name for s in statuses} == {ValidDataSourceName.UNIZIN_DATA_PLATFORM_EVENTS,
                                                       ValidDataSourceName.KALTURA_API}
    assert client.restarts >= 2
    first_hourly = hourly_rows(migrated_engine)
    assert without_ids(first_hourly) == expected_hourly(media, FIRST_RUN)
    assert created_rows(migrated_engine) == want_created
    assert course_rows(migrated_engine) == want_courses
    assert any(len(name) > 200 for _, name, _ in want_created.values())
    assert any(not name.isascii() for _, name, _ in want_created.values())

    # 2. Same day, nothing new: nothing added, nothing raised.
    mivideo_extract.main(env, engine=migrated_engine, config_dir=config_dir, kaltura=kaltura_client(env))
    assert hourly_rows(migrated_engine) == first_hourly
    assert created_rows(migrated_engine) == want_created
    assert course_rows(migrated_engine) == want_courses

    # 3. Days later: exactly the new rows are added; earlier rows are untouched (same ids).
    clock.set(LATER_RUN)
    mivideo_extract.main(env, engine=migrated_engine, config_dir=config_dir, kaltura=kaltura_client(env))
    later_hourly = hourly_rows(migrated_engine)
    assert without_ids(later_hourly) == expected_hourly(media, LATER_RUN)
    assert {k: v for k, v in later_hourly.items() if k in first_hourly} == first_hourly
    later_created, later_courses = expected_tables(media, LATER_RUN)
    assert len(later_created) > len(want_created)
    assert created_rows(migrated_engine) == later_created
    assert course_rows(migrated_engine) == later_courses

    # The job's actual SQL was evaluated, with its parameters, by the BigQuery simulator.
    assert all("@startTime" in sql for sql in bigquery_sim[1].queries)


def test_kaltura_unreachable_keeps_udp_data(migrated_engine: sa.Engine, config_dir: Path, media: MediaData,
                                            clock: SimClock, bigquery_sim: tuple[SimServer, BigQuerySimulator]) -> None:
    clock.set(FIRST_RUN)
    with socket.socket() as probe:               # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env = make_env(closed_url, bigquery_sim[0].url, media)
    with pytest.raises(JobError) as failure:
        mivideo_extract.main(env, engine=migrated_engine, config_dir=config_dir, kaltura=kaltura_client(env))
    assert "media created" in str(failure.value)
    assert "media started" not in " ".join(failure.value.details)
    assert without_ids(hourly_rows(migrated_engine)) == expected_hourly(media, FIRST_RUN)
    assert created_rows(migrated_engine) == {}


def test_bigquery_failure_keeps_kaltura_data(migrated_engine: sa.Engine, config_dir: Path, media: MediaData,
                                             clock: SimClock, kaltura_sim: tuple[SimServer, KalturaSimulator],
                                             bigquery_sim: tuple[SimServer, BigQuerySimulator]) -> None:
    clock.set(FIRST_RUN - timedelta(days=40))   # a small slice of the media keeps this test quick
    env = make_env(kaltura_sim[0].url, bigquery_sim[0].url, media, udp_events_project="udp-other-prod")
    with pytest.raises(JobError) as failure:
        mivideo_extract.main(env, engine=migrated_engine, config_dir=config_dir, kaltura=kaltura_client(env))
    assert "media started hourly" in " ".join(failure.value.details)
    assert "Not found" in " ".join(failure.value.details)
    assert hourly_rows(migrated_engine) == {}
    assert created_rows(migrated_engine) == expected_tables(media, clock.now())[0]


@pytest.mark.parametrize(("seed", "outage_seconds"), [(1, 30.0), (2, 4.0), (3, 4.0)])
def test_outage_and_faults_give_the_expected_rows(migrated_engine: sa.Engine, media: MediaData,
                                                  tmp_path: Path, seed: int, outage_seconds: float) -> None:
    """Kaltura and BigQuery down together mid-run, independent faults on both: the same rows as a quiet run."""
    now = FIRST_RUN - timedelta(days=30)         # a slice of the media keeps the test quick
    clock = SimClock(now)
    faulty = ServerOptions(cost=CostModel(overhead_ms=0, per_record_ms=0), seed=seed,
                           # ~40 requests draw faults (the others fall in the outage), and Kaltura's session
                           # nonce changes their keys each run: at 11 % in all, two runs in about twenty drew none
                           # (0.89^40 is 1 %; at 22 %, 0.78^40 is 0.005 %).
                           faults=FaultOptions(http500=0.08, http502_503=0.08, reset=0.06),
                           outage=OutageOptions(after_requests=12, seconds=outage_seconds))
    kaltura_server, _ = start_kaltura_server(media, KalturaSimOptions(media.partner_id, SECRET), clock=clock,
                                             server_options=faulty)
    bigquery_server, bigquery = start_bigquery_server(media, clock=clock, page_rows=100, running_polls=1,
                                                      server_options=replace(faulty, seed=seed + 100))
    kaltura_server.share_outages(bigquery_server.outages)
    try:
        bigquery.trust(write_service_account_file(tmp_path / "udp_sa.json", f"{bigquery_server.url}/token"))
        env = make_env(kaltura_server.url, bigquery_server.url, media)
        policy = RetryPolicy(max_attempts=3, backoff_initial=0.05, backoff_max=1.0)
        kaltura = KalturaMediaClient(KalturaSettings(kaltura_server.url, media.partner_id, SECRET, policy),
                                     sleep=lambda _: None)
        settings = BigQuerySettings(tmp_path / "udp_sa.json", bigquery_server.url, policy=policy)
        reader = BigQueryReader(create_bigquery_client(settings), settings)
        mivideo_extract.main(env, engine=migrated_engine, config_dir=tmp_path, kaltura=kaltura, bigquery=reader)
        reader.close()
        stats = [kaltura_server.stats.snapshot(), bigquery_server.stats.snapshot()]
    finally:
        kaltura_server.stop()
        bigquery_server.stop()
    want_created, want_courses = expected_tables(media, now)
    assert without_ids(hourly_rows(migrated_engine)) == expected_hourly(media, now)
    assert created_rows(migrated_engine) == want_created and course_rows(migrated_engine) == want_courses
    assert sum(s["outage_failures"] for s in stats) > 5 and sum(sum(s["faults"].values()) for s in stats) > 0
