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


def test_unknown_job_names_are_left_to_the_runner(tmp_path):
    env = load(write_config(tmp_path, valid_config(JOB_NAMES=["COURSE_INVENTORY", "GRADES"])))
    assert env["JOB_NAMES"] == ("COURSE_INVENTORY", "GRADES")   # the runner logs GRADES as an error and skips it


@pytest.mark.parametrize("workers", [0, -4])
def test_zero_or_negative_worker_count(tmp_path, workers):
    assert "NUM_ASYNC_WORKERS: must be at least 1" in problems_of(tmp_path, valid_config(NUM_ASYNC_WORKERS=workers))


def test_malformed_json_override_for_a_list_key(tmp_path):
    message = problems_of(tmp_path, valid_config(), overrides={"JOB_NAMES": '["MIVIDEO"'})
    assert ("JOB_NAMES: must be an array, got a string (its value is not valid JSON) (set by the environment "
            "variable JOB_NAMES, not the file)") in message


def test_ports_may_be_numbers_or_strings(tmp_path):
    config = valid_config()
    config["INVENTORY_DB"]["port"] = 3306
    env = load(write_config(tmp_path, config), {"UDW__port": "5433"})
    assert env["INVENTORY_DB"]["port"] == "3306" and env["UDW"]["port"] == "5433"
    config["INVENTORY_DB"]["port"] = "33o6"
    assert "INVENTORY_DB.port: must be a port number" in problems_of(tmp_path, config)
    config["INVENTORY_DB"]["port"] = 70000
    assert "INVENTORY_DB.port: must be at most 65535" in problems_of(tmp_path, config)


def test_a_misspelt_database_key_is_an_unknown_key_and_the_real_one_is_missing(tmp_path, caplog):
    config = valid_config()
    config["UDW"]["passwd"] = config["UDW"].pop("password")
    message = problems_of(tmp_path, config)
    assert "UDW: missing required key password" in message
    assert "UDW.passwd: unknown key (did you mean password?)" in caplog.text


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


# ---- unknown keys, nested overrides, secrets mounted as files ----

def test_unknown_keys_are_warnings_with_the_nearest_known_key(tmp_path, caplog):
    config = valid_config(CREATE_CSV=True)
    config["CANVAS"]["ADD_COURSES_IDS"] = [5]
    env = load(write_config(tmp_path, config))
    assert "CREATE_CSV: unknown key (did you mean CREATE_CSVS?); ignored" in caplog.text
    assert "CANVAS.ADD_COURSES_IDS: unknown key (did you mean ADD_COURSE_IDS?); ignored" in caplog.text
    assert env["CREATE_CSVS"] is False and env["CANVAS"]["ADD_COURSE_IDS"] == ()


def test_unknown_keys_are_errors_when_strict(tmp_path):
    config = valid_config(CREATE_CSV=True, WAREHOUSE_INCREMENT=0)
    with pytest.raises(ConfigError) as info:
        environ.load_env(write_config(tmp_path, config), environ.SCHEMA_PATH, {}, strict=True)
    assert info.value.details == ["CREATE_CSV: unknown key (did you mean CREATE_CSVS?)",
                                  "WAREHOUSE_INCREMENT: unknown key"]


def schema():
    import hjson
    return hjson.loads(environ.SCHEMA_PATH.read_text())


def test_the_template_and_readme_keys_are_all_known():
    import hjson

    from environ_keys import nodes_at, unknown_keys
    blank = hjson.loads((ROOT / "config" / "env_blank.hjson").read_text())
    assert unknown_keys(blank, schema()) == []
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    section, documented = None, []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or "`" not in cells[0] + cells[1]:
            continue
        if cells[0]:
            section = cells[0].strip("`")
        keys = [k.strip().strip("`") for k in cells[1].split(",")] if cells[1] else [None]
        documented += [(section,) if key is None else (section, key) for key in keys]
    assert len(documented) > 30
    missing = [path for path in documented if not nodes_at(schema(), path)]
    assert missing == []


def test_nested_keys_are_overridden_without_replacing_their_section(tmp_path):
    path = write_config(tmp_path, valid_config())
    env = load(path, {"CANVAS__CANVAS_TOKEN": "from-env", "INVENTORY_DB__password": "123456",
                      "CANVAS__CANVAS_TERM_IDS": "[8, 9]", "INVENTORY_DB__port": "3307", "MIVIDEO__foo__bar": "x"})
    assert env["CANVAS"]["CANVAS_TOKEN"] == "from-env"
    assert env["CANVAS"]["API_CLIENT_SECRET"] == "gateway-secret"            # the rest of the section stays
    assert env["CANVAS"]["CANVAS_TERM_IDS"] == (8, 9)                          # JSON when valid JSON
    assert env["INVENTORY_DB"]["password"] == "123456"                        # a string key keeps the text
    assert env["INVENTORY_DB"]["port"] == "3307"


def test_an_override_into_a_value_that_is_not_a_section_is_reported(tmp_path):
    message = problems_of(tmp_path, valid_config(), overrides={"LOG_LEVEL__x": "1"})
    assert "LOG_LEVEL.x: LOG_LEVEL is not an object, so the environment variable LOG_LEVEL__x cannot" in message


def kubernetes_secret(directory, values):
    """The layout kubelet writes for a Secret volume: files in a timestamped dir, reached through ..data."""
    real = directory / "..2026_01_01_00_00_00.000000001"
    real.mkdir(parents=True)
    for name, value in values.items():
        (real / name).write_text(value)
    (directory / "..data").symlink_to(real.name)
    for name in values:
        (directory / name).symlink_to(f"..data/{name}")
    return directory


def test_secrets_come_from_files_mounted_apart_from_the_configuration(tmp_path, caplog):
    config = valid_config()
    for section, key in environ.SECRET_PATHS:
        del config[section][key]
    path = write_config(tmp_path / "configmap", config)
    secrets = kubernetes_secret(tmp_path / "secret", {
        "CANVAS__CANVAS_TOKEN": "file-token\n", "CANVAS__API_CLIENT_SECRET": "file-gw\n",
        "MIVIDEO__kaltura_user_secret": "file-kal", "UDW__password": "file-udw\n", "INVENTORY_DB__password": "\n",
        "CANVAS__CANVAS_TOKN": "x"})
    env = environ.load_env(path, environ.SCHEMA_PATH, {"UDW__password": "env-udw"}, secrets=secrets)
    assert env["CANVAS"]["CANVAS_TOKEN"] == "file-token" and env["CANVAS"]["API_CLIENT_SECRET"] == "file-gw"
    assert env["MIVIDEO"]["kaltura_user_secret"] == "file-kal" and env["INVENTORY_DB"]["password"] == ""
    assert env["UDW"]["password"] == "env-udw"                                # the environment wins
    assert "CANVAS.CANVAS_TOKN: unknown key (did you mean CANVAS_TOKEN?)" in caplog.text
    assert "file-" not in caplog.text


def test_a_secrets_dir_that_is_not_a_directory(tmp_path):
    path = write_config(tmp_path, valid_config())
    with pytest.raises(ConfigError, match=r"ENV_SECRETS_DIR .*nothing does not exist"):
        environ.load_env(path, environ.SCHEMA_PATH, {}, secrets=tmp_path / "nothing")
    with pytest.raises(ConfigError, match=r"ENV_SECRETS_DIR .*env.hjson is not a directory"):
        environ.load_env(path, environ.SCHEMA_PATH, {}, secrets=path)


def test_a_bad_secret_file_value_names_the_file_not_the_value(tmp_path):
    config = valid_config()
    secrets = kubernetes_secret(tmp_path / "secret", {"MIVIDEO__kaltura_partner_id": "abc-secretish"})
    with pytest.raises(ConfigError) as info:
        environ.load_env(write_config(tmp_path, config), environ.SCHEMA_PATH, {}, secrets=secrets)
    message = str(info.value)
    assert "MIVIDEO.kaltura_partner_id: must be an integer, got a string" in message
    assert "set by the secrets file" in message and "MIVIDEO__kaltura_partner_id" in message
    assert "abc-secretish" not in message


# ---- messages that name the real cause ----

def test_an_empty_file_reports_what_is_missing_not_every_job_section(tmp_path):
    message = problems_of(tmp_path, text="")
    assert "missing required key JOB_NAMES, INVENTORY_DB" in message
    assert "CANVAS" not in message and "MIVIDEO" not in message and "UDW" not in message


def test_jobs_chosen_on_the_command_line_decide_the_required_sections(tmp_path):
    config = valid_config(JOB_NAMES=["MIVIDEO"])
    del config["CANVAS"], config["UDW"]
    path = write_config(tmp_path, config)
    assert load(path)["JOB_NAMES"] == ("MIVIDEO",)
    with pytest.raises(ConfigError, match="missing required key CANVAS$"):
        environ.load_env(path, environ.SCHEMA_PATH, {}, job_names=["COURSE_INVENTORY"])


@pytest.mark.parametrize("job", ["COURSE_INVENTORY", "canvas_zoom_meetings"])
def test_canvas_jobs_need_a_term(tmp_path, job):
    config = valid_config(JOB_NAMES=[job])
    config["CANVAS"]["CANVAS_TERM_IDS"] = []
    assert "CANVAS.CANVAS_TERM_IDS: must not be empty" in problems_of(tmp_path, config)
    assert load(write_config(tmp_path, valid_config(JOB_NAMES=["MIVIDEO"], CANVAS=config["CANVAS"])))


def test_a_directory_given_as_the_file(tmp_path):
    (tmp_path / "env.hjson").mkdir()
    with pytest.raises(ConfigError, match=r"env.hjson is a directory, not a file"):
        load(tmp_path / "env.hjson")


def test_log_levels_in_any_case_and_a_bad_one_names_the_environment(tmp_path):
    path = write_config(tmp_path, valid_config())
    assert load(path, {"LOG_LEVEL": "debug"})["LOG_LEVEL"] == "DEBUG"
    message = problems_of(tmp_path, valid_config(), overrides={"LOG_LEVEL": "verbose"})
    assert "LOG_LEVEL: must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG (set by the environment variable " \
           "LOG_LEVEL, not the file)" in message


def test_an_unsearchable_configuration_directory_is_one_line_and_exit_2():
    import shutil
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="cit-perm-", dir="/tmp"))   # pytest's tmp_path is private to root
    base.chmod(0o755)
    config_dir = base / "conf"
    write_config(config_dir, valid_config())
    config_dir.chmod(0o644)                      # listable, not searchable
    try:
        result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                 sys.executable, "run_jobs.py"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60, env={"ENV_DIR": str(config_dir), "PATH": "/usr/bin:/bin"})
    finally:
        config_dir.chmod(0o755)
        shutil.rmtree(base)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "permission denied (the directory" in result.stderr and "must be searchable" in result.stderr


def test_the_loader_default_share_is_the_schema_default():
    from db.loader import LoadPolicy
    properties = schema()["properties"]
    assert LoadPolicy().min_share == properties["MIN_SNAPSHOT_SHARE"]["default"]
    assert LoadPolicy().allow_shrink is properties["ALLOW_SHRINK"]["default"]
