"""MIVIDEO configuration, SQL text and BigQuery parameter/error mapping (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

import environ
from clients.bigquery import BigQuerySettings, _parameter, _source_error, create_bigquery_client
from mivideo import queries
from mivideo.mivideo_extract import _run_procedures
from mivideo.settings import settings_from_env
from tests.conftest import write_config
from vocab import (
    ConfigError,
    DataSourceStatus,
    FatalSourceError,
    JobError,
    RetriableSourceError,
    SourceError,
    ValidDataSourceName,
)

SECRET = "kaltura-admin-secret"


def env(**mivideo: object) -> dict:
    section = {"udp_service_account_json_filename": "sa.json", "kaltura_partner_id": 7, "kaltura_user_secret": SECRET}
    section.update(mivideo)
    return {"JOB_NAMES": ["MIVIDEO"], "MAX_REQ_ATTEMPTS": 4, "MIVIDEO": section,
            "INVENTORY_DB": {"host": "db.test", "port": 3306, "dbname": "inventory", "user": "u", "password": ""}}


def loaded(directory: Path, config: dict) -> environ.Env:
    """The configuration as a run gets it: checked against the schema, defaults filled."""
    return environ.load_env(write_config(directory, config))


def test_settings_from_a_minimal_section_use_the_documented_defaults(tmp_path: Path) -> None:
    settings = settings_from_env(loaded(tmp_path, env()), tmp_path)
    assert settings.default_last_timestamp == datetime(2020, 3, 1, tzinfo=UTC)
    assert settings.bigquery.key_file == tmp_path / "sa.json" and settings.bigquery.api_endpoint == ""
    assert settings.kaltura.service_url == "https://www.kaltura.com" and settings.kaltura.policy.max_attempts == 4
    assert settings.categories_full_name_in == "Canvas_UMich" and len(settings.kaf_ed_apps) == 2
    assert SECRET not in repr(settings)


def test_default_timestamp_is_converted_to_utc(tmp_path: Path) -> None:
    settings = settings_from_env(loaded(tmp_path, env(default_last_timestamp="2020-03-01T00:00:00-05:00")), tmp_path)
    assert settings.default_last_timestamp == datetime(2020, 3, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize("bad", [{"kaltura_partner_id": "many"}, {"default_last_timestamp": "2020-03-01T00:00:00"},
                                 {"udp_events_project": "proj`; DROP"}, {"kaltura_user_secret": None}])
def test_invalid_settings_name_the_problem_not_the_values(tmp_path: Path, bad: dict) -> None:
    config = env(**bad)
    if bad.get("kaltura_user_secret", "") is None:
        del config["MIVIDEO"]["kaltura_user_secret"]
    with pytest.raises(ConfigError) as error:                      # the schema names keys, never values
        loaded(tmp_path, config)
    assert SECRET not in str(error.value) and "DROP" not in str(error.value)


def test_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        create_bigquery_client(BigQuerySettings(tmp_path / "absent.json"))
    (tmp_path / "broken.json").write_text('{"type": "service_account"}')
    with pytest.raises(ConfigError, match="not a valid key"):
        create_bigquery_client(BigQuerySettings(tmp_path / "broken.json"))


def test_query_text() -> None:
    sql = queries.media_started_hourly("udp-umich-prod")
    assert "`udp-umich-prod.event_store.events`" in sql and "'$.object.extensions.kaf:course_id'" in sql
    assert "@startTime" in sql and "@kafApps" in sql and "CURRENT_DATE()" in sql
    for bad in ("UDP", "a", "proj.evil`--", "x" * 40):
        with pytest.raises(ValueError):
            queries.media_started_hourly(bad)


def test_parameters_are_typed_from_python_values() -> None:
    start = datetime(2020, 3, 1, tzinfo=timezone(timedelta(hours=-5)))
    assert _parameter("startTime", start).to_api_repr() == {
        "name": "startTime", "parameterType": {"type": "TIMESTAMP"},
        "parameterValue": {"value": "2020-03-01 05:00:00+00:00"}}
    assert _parameter("kafApps", ["a", "b"]).to_api_repr()["parameterType"] == {"type": "ARRAY",
                                                                                 "arrayType": {"type": "STRING"}}
    assert _parameter("n", 5).type_ == "INT64" and _parameter("flag", True).type_ == "BOOL"
    with pytest.raises(ValueError):
        _parameter("naive", datetime(2020, 3, 1))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(("raised", "expected"), [
    (api_exceptions.InternalServerError("boom"), RetriableSourceError),
    (api_exceptions.TooManyRequests("slow down"), RetriableSourceError),
    (requests.ConnectionError("refused"), RetriableSourceError),
    (requests.JSONDecodeError("Unterminated string", "{", 1), RetriableSourceError),
    (auth_exceptions.TransportError("no route"), RetriableSourceError),
    (api_exceptions.BadRequest("Syntax error"), FatalSourceError),
    (api_exceptions.NotFound("Not found: Dataset"), FatalSourceError),
    (auth_exceptions.RefreshError("invalid_grant"), FatalSourceError),
])
def test_library_errors_map_to_vocab(raised: Exception, expected: type[SourceError]) -> None:
    mapped = _source_error("q", raised)
    assert type(mapped) is expected and mapped.source == "bigquery"


def test_one_failed_procedure_does_not_stop_the_other() -> None:
    ran: list[str] = []

    def failing() -> DataSourceStatus:
        ran.append("failing")
        raise RetriableSourceError("Kaltura media.list: connection failed", source="kaltura")

    def crashing() -> DataSourceStatus:
        ran.append("crashing")
        raise KeyError("bug")

    def working() -> DataSourceStatus:
        ran.append("working")
        return DataSourceStatus(ValidDataSourceName.KALTURA_API)

    assert [s.data_source_name for s in _run_procedures([("a", working)])] == [ValidDataSourceName.KALTURA_API]
    with pytest.raises(JobError) as failure:
        _run_procedures([("media created", failing), ("other", crashing), ("media started hourly", working)])
    assert ran == ["working", "failing", "crashing", "working"]
    assert failure.value.details == ["media created: Kaltura media.list: connection failed",
                                     "other: unexpected KeyError"]
