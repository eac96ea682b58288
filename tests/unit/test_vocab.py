from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from vocab import ConfigError, DataSourceStatus, EtlError, JobError, ValidDataSourceName, ValidJobName


def test_job_names_map_to_entry_functions():
    assert ValidJobName.COURSE_INVENTORY.value == "course_inventory.inventory.run_course_inventory"
    assert ValidJobName.MIVIDEO.value == "mivideo.mivideo_extract.main"
    assert ValidJobName.CANVAS_ZOOM_MEETINGS.value == "online_meetings.canvas_zoom_meetings.main"


def test_data_source_names_print_bare():
    assert str(ValidDataSourceName.KALTURA_API) == "KALTURA_API"
    assert {m.name for m in ValidDataSourceName} == {
        "CANVAS_API", "CANVAS_ZOOM_MEETINGS", "KALTURA_API", "UNIZIN_DATA_PLATFORM_EVENTS", "UNIZIN_DATA_WAREHOUSE"}


def test_status_defaults_to_now_utc():
    before = datetime.now(UTC)
    status = DataSourceStatus(ValidDataSourceName.CANVAS_API)
    assert before <= status.data_updated_at <= datetime.now(UTC)
    assert status.copy() == {"data_source_name": ValidDataSourceName.CANVAS_API,
                             "data_updated_at": status.data_updated_at}


def test_status_accepts_explicit_utc_time():
    moment = datetime(2020, 1, 15, 4, 12, 33, tzinfo=UTC)
    assert DataSourceStatus(ValidDataSourceName.UNIZIN_DATA_WAREHOUSE, moment).data_updated_at == moment


@pytest.mark.parametrize("name", ["CANVAS_API", None, 1])
def test_status_refuses_names_that_are_not_members(name):
    with pytest.raises(ValueError):
        DataSourceStatus(name)


def test_status_refuses_pandas_timestamp():
    with pytest.raises(TypeError):
        DataSourceStatus(ValidDataSourceName.CANVAS_API, pd.Timestamp("2020-01-01", tz="UTC"))


@pytest.mark.parametrize("moment", [datetime(2020, 1, 1), datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=-5)))])
def test_status_refuses_naive_or_non_utc(moment):
    with pytest.raises(ValueError):
        DataSourceStatus(ValidDataSourceName.CANVAS_API, moment)


def test_exception_messages_survive_str_and_args():
    error = JobError("Canvas unreachable")
    assert str(error) == "Canvas unreachable" and error.args == ("Canvas unreachable",)
    assert isinstance(error, EtlError)
    config_error = ConfigError("env.hjson is invalid", details=["A: must be a string"])
    assert config_error.args == ("env.hjson is invalid",)
    assert "A: must be a string" in str(config_error)
