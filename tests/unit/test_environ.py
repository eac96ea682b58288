"""Configuration loading: valid files, overrides, defaults, and one clear message per problem."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import environ
from tests.conftest import valid_config, write_config
from vocab import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ["canvas-token", "gateway-secret", "kaltura-secret", "udw-pw"]


def load(path, overrides=None):
    return environ.load_env(path, environ.SCHEMA_PATH, overrides or {})


def problems_of(tmp_path, config=None, text=None, overrides=None):
    path = tmp_path / "env.hjson"
    if text is not None:
        path.write_text(text)
    else:
        write_config(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        load(path, overrides)
    message = str(info.value)
    for secret in SECRETS:
        assert secret not in message
    return message


def test_valid_config_gets_defaults(tmp_path):
    config = valid_config()
    del config["MAX_REQ_ATTEMPTS"], config["NUM_ASYNC_WORKERS"], config["CREATE_CSVS"]
    env = load(write_config(tmp_path, config))
    assert env["MAX_REQ_ATTEMPTS"] == 3 and env["NUM_ASYNC_WORKERS"] == 8 and env["CREATE_CSVS"] is False
    assert env["ZOOM"]["BASE_URL"] == "https://applications.zoom.us"
    assert env["MIVIDEO"]["kaltura_categories_full_name_in"] == "Canvas_UMich"
    with pytest.raises(TypeError):
        env["LOG_LEVEL"] = "DEBUG"  # read-only


def test_hjson_comments_unquoted_keys_and_trailing_commas(tmp_path):
    config = valid_config()
    text = "# comment\n{\n  LOG_LEVEL: DEBUG\n" + "\n".join(
        f"  {key}: {json.dumps(value)}," for key, value in config.items() if key != "LOG_LEVEL") + "\n}\n"
    (tmp_path / "env.hjson").write_text(text)
    assert load(tmp_path / "env.hjson")["LOG_LEVEL"] == "DEBUG"


def test_environment_overrides_parse_json_or_keep_strings(tmp_path):
    path = write_config(tmp_path, valid_config())
    env = load(path, {"JOB_NAMES": '["mivideo", "COURSE_INVENTORY"]', "LOG_LEVEL": "WARNING",
                      "NUM_ASYNC_WORKERS": "16", "PATH": "/usr/bin"})
    assert env["JOB_NAMES"] == ("mivideo", "COURSE_INVENTORY")
    assert env["LOG_LEVEL"] == "WARNING" and env["NUM_ASYNC_WORKERS"] == 16
    assert "PATH" not in env


def test_empty_inventory_db_password_is_allowed(tmp_path):
    config = valid_config()
    config["INVENTORY_DB"]["password"] = ""
    assert load(write_config(tmp_path, config))["INVENTORY_DB"]["password"] == ""


def test_env_dir_and_env_file_locate_the_file(tmp_path):
    write_config(tmp_path / "conf", valid_config(), name="prod.hjson")
    assert environ.config_path({"ENV_DIR": str(tmp_path / "conf"), "ENV_FILE": "prod.hjson"}) == (
        tmp_path / "conf" / "prod.hjson")
    assert environ.config_path({}) == environ.DEFAULT_CONFIG_DIR / "env.hjson"


def test_from_environ_import_env_works(tmp_path, monkeypatch):
    write_config(tmp_path, valid_config())
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    from environ import ENV
    assert ENV["CANVAS"]["CANVAS_TERM_IDS"] == (7,)


# ---- one clear message per problem ----

def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"configuration file .*missing\.hjson does not exist"):
        load(tmp_path / "missing.hjson")


def test_config_directory_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"configuration directory .*nowhere does not exist"):
        load(tmp_path / "nowhere" / "env.hjson")


def test_hjson_syntax_error_names_the_line(tmp_path):
    text = '{\n  LOG_LEVEL: INFO\n  CANVAS: {\n    CANVAS_TOKEN: "canvas-token"\n  ]\n}\n'
    message = problems_of(tmp_path, text=text)
    assert "not valid HJSON" in message and "line 5" in message


def test_wrong_type(tmp_path):
    assert "MAX_REQ_ATTEMPTS: must be an integer, got a string" in problems_of(
        tmp_path, valid_config(MAX_REQ_ATTEMPTS="three"))


def test_missing_required_top_level_key(tmp_path):
    config = valid_config()
    del config["INVENTORY_DB"]
    assert "missing required key INVENTORY_DB" in problems_of(tmp_path, config)


def test_missing_nested_required_key_names_the_path(tmp_path):
    config = valid_config()
    del config["CANVAS"]["CANVAS_TOKEN"]
    assert "CANVAS: missing required key CANVAS_TOKEN" in problems_of(tmp_path, config)


def test_bad_date_time(tmp_path):
    config = valid_config()
    config["MIVIDEO"]["default_last_timestamp"] = "last Tuesday"
    assert "MIVIDEO.default_last_timestamp: is not a valid date-time" in problems_of(tmp_path, config)


def test_unknown_job_name(tmp_path):
    message = problems_of(tmp_path, valid_config(JOB_NAMES=["COURSE_INVENTORY", "GRADES"]))
    assert "JOB_NAMES.1: unknown job name" in message


@pytest.mark.parametrize("workers", [0, -4])
def test_zero_or_negative_worker_count(tmp_path, workers):
    assert "NUM_ASYNC_WORKERS: must be at least 1" in problems_of(tmp_path, valid_config(NUM_ASYNC_WORKERS=workers))


def test_malformed_json_override_for_a_list_key(tmp_path):
    message = problems_of(tmp_path, valid_config(), overrides={"JOB_NAMES": '["MIVIDEO"'})
    assert "JOB_NAMES: must be an array, got a string (the environment variable JOB_NAMES is not valid JSON)" in message


def test_port_must_be_a_numeric_string(tmp_path):
    config = valid_config()
    config["INVENTORY_DB"]["port"] = 3306
    assert "INVENTORY_DB.port: must be a string, got an integer" in problems_of(tmp_path, config)


def test_unknown_database_key(tmp_path):
    config = valid_config()
    config["UDW"]["passwd"] = "udw-pw"
    assert "UDW: unknown key(s) passwd" in problems_of(tmp_path, config)


def test_bad_log_level(tmp_path):
    assert "LOG_LEVEL: must be one of" in problems_of(tmp_path, valid_config(LOG_LEVEL="VERBOSE"))


def test_url_must_be_http(tmp_path):
    config = valid_config()
    config["CANVAS"]["CANVAS_URL"] = "canvas.example.edu"
    assert "CANVAS.CANVAS_URL: must be an http(s) URL" in problems_of(tmp_path, config)


def test_selected_job_needs_its_section(tmp_path):
    config = valid_config(JOB_NAMES=["mivideo"])
    del config["MIVIDEO"]
    assert "missing required key MIVIDEO" in problems_of(tmp_path, config)


def test_every_problem_is_reported_once(tmp_path):
    config = valid_config(NUM_ASYNC_WORKERS=0, LOG_LEVEL="LOUD")
    config["CANVAS"]["CANVAS_TOKEN"] = 12345
    message = problems_of(tmp_path, config)
    assert "(3 problem(s))" in message
    assert message.count("NUM_ASYNC_WORKERS") == 1


def test_secret_of_wrong_type_is_not_echoed(tmp_path):
    config = valid_config()
    config["CANVAS"]["API_CLIENT_SECRET"] = ["gateway-secret"]
    message = problems_of(tmp_path, config)
    assert "CANVAS.API_CLIENT_SECRET: must be a string, got an array" in message


@pytest.mark.parametrize("setup", ["missing", "syntax", "invalid"])
def test_runner_exits_2_without_traceback(tmp_path, setup):
    if setup == "syntax":
        (tmp_path / "env.hjson").write_text("{ JOB_NAMES: [ }")
    elif setup == "invalid":
        write_config(tmp_path, valid_config(NUM_ASYNC_WORKERS=-1))
    result = subprocess.run([sys.executable, "run_jobs.py"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "configuration error" in result.stderr
