"""The optional warehouse in the configuration: COURSE_INVENTORY runs without `UDW`; SECTION_SIS_IDS_FROM."""

import hjson
import pytest

import environ
from tests.conftest import valid_config, write_config
from vocab import ConfigError


def load(tmp_path, config, overrides=None):
    return environ.load_env(write_config(tmp_path, config), environ.SCHEMA_PATH, overrides or {})


def test_course_inventory_needs_no_udw(tmp_path):
    config = valid_config(JOB_NAMES=["COURSE_INVENTORY"])
    del config["UDW"]
    env = load(tmp_path, config)
    assert "UDW" not in env and env["SECTION_SIS_IDS_FROM"] == "UDW"      # the default, unused without a UDW


@pytest.mark.parametrize("value", ["UDW", "CANVAS"])
def test_section_sis_ids_from_takes_either_source_also_from_the_environment(tmp_path, value):
    assert load(tmp_path, valid_config(SECTION_SIS_IDS_FROM=value))["SECTION_SIS_IDS_FROM"] == value
    assert load(tmp_path, valid_config(), {"SECTION_SIS_IDS_FROM": value})["SECTION_SIS_IDS_FROM"] == value


def test_an_unknown_source_is_one_clear_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, valid_config(SECTION_SIS_IDS_FROM="warehouse"))
    assert "SECTION_SIS_IDS_FROM: must be one of UDW, CANVAS" in str(info.value)


def test_an_incomplete_udw_is_still_refused(tmp_path):
    config = valid_config()
    del config["UDW"]["dbname"]
    with pytest.raises(ConfigError, match="UDW: missing required key dbname"):
        load(tmp_path, config)


def test_the_template_leaves_the_udw_out_and_explains_both_choices():
    text = environ.ROOT.joinpath("config", "env_blank.hjson").read_text()
    assert "UDW" not in hjson.loads(text) and "SECTION_SIS_IDS_FROM" not in hjson.loads(text)
    for phrase in ("# UDW: {", "# SECTION_SIS_IDS_FROM: UDW", "Section.sisId", "canvasdatadate", "CANVAS"):
        assert phrase in text
