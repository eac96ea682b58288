"""The sandbox runner (Sandbox, register_service, env file) and the `python -m sandbox` command line."""

from __future__ import annotations

import json
import re
import stat
import uuid
from pathlib import Path

import hjson
import pytest
import requests

import environ
from sandbox.__main__ import build_parser, main, sandbox_options
from sandbox.httpapp import App, Request, json_response
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.runner import ENV_TEMPLATE, ROOT, Sandbox, SandboxOptions, default_term_ids, register_service
from sandbox.throttle import ThrottleOptions
from sandbox.udw_lag import NO_LAG, UdwLag
from tests.helpers.serve_process import lines_until, serve_process, stop
from tests.sandbox.test_canvas_rest import tiny_university

FREE = CostModel(overhead_ms=0, per_record_ms=0)


def fake_zoom_factory(university, options):
    app = App()

    @app.route("POST", "/lti/rich")
    def launch(request: Request):
        return json_response({"course": request.form().get("custom_canvas_course_id")})

    assert isinstance(options["server_options"], ServerOptions)
    assert not options["server_options"].throttle.enabled
    server = SimServer(app, name="zoom", options=options["server_options"]).start()
    return server, {"ZOOM": {"BASE_URL": server.url}, "MIVIDEO": {"kaltura_partner_id": options["partner"]}}


@pytest.fixture
def zoom_registered(monkeypatch):
    import sandbox.runner as runner

    monkeypatch.setattr(runner, "_registry", {})
    register_service("zoom", fake_zoom_factory)


def test_sandbox_wires_canvas_gateway_and_services_into_a_valid_env_file(tmp_path, zoom_registered):
    env_file = tmp_path / "conf" / "env.hjson"
    options = SandboxOptions(services=("zoom",), service_options={"zoom": {"partner": 4242}}, cost=FREE,
                             env_file=env_file, term_ids=(7,),
                             inventory_db={"host": "db", "port": 3306, "dbname": "inv", "user": "u", "password": ""})
    with Sandbox(tiny_university(), options) as sandbox:
        assert set(sandbox.urls()) == {"zoom", "canvas", "gateway"}
        env = environ.load_env(env_file)                                # validates against env_schema.hjson
        template = hjson.loads(ENV_TEMPLATE.read_text())
        assert set(env) >= set(template)
        for section in ("CANVAS", "MIVIDEO", "INVENTORY_DB", "ZOOM"):
            assert set(env[section]) >= set(template[section])
        assert "UDW" not in env                                         # no warehouse asked for: none configured
        canvas = env["CANVAS"]
        assert canvas["CANVAS_URL"] == sandbox.urls()["canvas"] and list(canvas["CANVAS_TERM_IDS"]) == [7]
        assert env["ZOOM"]["BASE_URL"] == sandbox.urls()["zoom"] and env["MIVIDEO"]["kaltura_partner_id"] == 4242
        assert env["INVENTORY_DB"]["port"] == "3306"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

        # The configuration really works: gateway OAuth + call, Canvas call, launch form aimed at the service.
        token = requests.post(f"{canvas['API_BASE_URL']}/aa/oauth2/token", timeout=5, data={
            "grant_type": "client_credentials", "client_id": canvas["API_CLIENT_ID"],
            "client_secret": canvas["API_CLIENT_SECRET"], "scope": canvas["API_SUBSCRIPTION_NAME"]}).json()
        term = requests.get(f"{canvas['API_BASE_URL']}/{canvas['API_SCOPE_PREFIX']}/accounts/1/terms/7", timeout=5,
                            headers={"Authorization": f"Bearer {token['access_token']}",
                                     "x-ibm-client-id": canvas["API_CLIENT_ID"]})
        assert term.json()["id"] == 7
        auth = {"Authorization": f"Bearer {canvas['CANVAS_TOKEN']}"}
        tab = requests.get(f"{canvas['CANVAS_URL']}/api/v1/courses/101/tabs", headers=auth, timeout=5).json()[1]
        launch = requests.get(tab["url"], headers=auth, timeout=5).json()
        page = requests.get(launch["url"], timeout=5).text
        action = re.search(r'action="([^"]+)"', page).group(1)
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
        assert requests.post(action, data=fields, timeout=5).json() == {"course": ["101"]}

        stats = sandbox.stats()
        assert stats["servers"]["gateway"]["requests"] == 2                 # token + term
        assert stats["servers"]["canvas"]["requests"] == 3                  # tabs, sessionless launch, page
        assert stats["servers"]["zoom"]["requests"] == 1
        assert stats["totals"]["requests"] == sum(s["requests"] for s in stats["servers"].values())
        assert float(term.headers["X-Rate-Limit-Remaining"]) <= 600        # Canvas-side throttle is on
    assert sandbox.servers == {}


def test_unknown_service_is_refused_and_nothing_keeps_running(zoom_registered):
    sandbox = Sandbox(tiny_university(), SandboxOptions(services=("zoom", "nope"), cost=FREE))
    with pytest.raises(ValueError, match="nope"):
        sandbox.start()
    assert sandbox.servers == {}


def test_udw_is_loaded_into_postgres_and_dropped():
    import psycopg2

    from sandbox.databases import POSTGRES

    params = {**POSTGRES, "dbname": f"sbx_udw_{uuid.uuid4().hex[:10]}"}
    university = tiny_university()
    options = SandboxOptions(services=(), cost=FREE, udw_db=params, drop_udw_on_close=True, udw_lag=NO_LAG)
    with Sandbox(university, options) as sandbox:
        assert sandbox.config["UDW"]["dbname"] == params["dbname"]
        with psycopg2.connect(**params) as conn, conn.cursor() as cur:
            cur.execute("SELECT canvas_id, sis_source_id FROM course_section_dim ORDER BY canvas_id")
            rows = cur.fetchall()
        conn.close()
        assert {r[0]: r[1] for r in rows} == {s.id: s.sis_source_id for s in university.sections}
    with psycopg2.connect(**{**params, "dbname": "postgres"}) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (params["dbname"],))
        assert cur.fetchone() is None
    conn.close()


def test_default_term_ids_prefer_terms_in_session():
    university = tiny_university()
    assert default_term_ids(university) == [7]                # no generator as_of: terms with a SIS id
    term = university.term_by_id[7]
    university.extras["generator"] = {"as_of": term.start_at}
    assert default_term_ids(university) == [7]


def test_fault_options_from_the_command_line():
    args = build_parser().parse_args(["serve", "--fault-rate", "0.1", "--fault-reset", "0.3",
                                      "--throttle-status", "403", "--token-ttl", "60", "--slow-seconds", "2",
                                      "--max-consecutive-faults", "3"])
    options = sandbox_options(args, env_file=None, udw_dbname=None, inventory_dbname=None)
    assert options.faults.reset == 0.3 and options.faults.http500 == pytest.approx(0.02)
    assert options.faults.slow_seconds == 2 and options.faults.max_consecutive == 3
    assert options.throttle.status == 403 and options.throttle.enabled
    assert options.gateway.token_ttl == 60 and options.udw_db is None


def test_udw_lag_options_from_the_command_line():
    args = build_parser().parse_args(["serve", "--udw-lag-missing", "0.25", "--udw-lag-stale", "0.5", "--seed", "9"])
    options = sandbox_options(args, env_file=None, udw_dbname="w", inventory_dbname=None)
    assert options.udw_lag == UdwLag(missing_share=0.25, stale_share=0.5, seed=9)
    defaults = sandbox_options(build_parser().parse_args(["serve"]), env_file=None, udw_dbname=None,
                               inventory_dbname=None)
    assert (defaults.udw_lag.missing_share, defaults.udw_lag.stale_share) == (UdwLag().missing_share,
                                                                              UdwLag().stale_share)


@pytest.mark.parametrize(("arguments", "message"), [(["--udw-lag-missing", "1.5"], "between 0 and 1"),
                                                    (["--udw-lag-missing", "0.6", "--udw-lag-stale", "0.5"],
                                                     "must not exceed 1")])
def test_impossible_udw_lag_is_a_usage_error(capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *arguments])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err



def test_command_line_defaults_are_the_faithful_ones():
    options = sandbox_options(build_parser().parse_args(["serve"]), env_file=None, udw_dbname=None,
                              inventory_dbname=None)
    assert options.faults.max_consecutive is None
    assert options.throttle == ThrottleOptions(enabled=True)           # 429, hwm 600, leak 10, up-front 50, max 800
    assert options.canvas.single_use_verifier and options.canvas.token_permissions is None
    assert options.canvas.roster_churn == 0.0 and not options.gateway.rewrite_links


def test_throttle_and_canvas_options_from_the_command_line():
    args = build_parser().parse_args(["serve", "--throttle-hwm", "300", "--throttle-up-front", "100",
                                      "--throttle-outflow", "5", "--throttle-maximum", "400", "--roster-churn", "0.2",
                                      "--token-permissions", "read_roster", "view_analytics",
                                      "--reusable-verifiers", "--gateway-rewrite-links"])
    options = sandbox_options(args, env_file=None, udw_dbname=None, inventory_dbname=None)
    assert (options.throttle.hwm, options.throttle.up_front, options.throttle.leak, options.throttle.maximum) == \
        (300, 100, 5, 400)
    assert options.canvas.roster_churn == 0.2 and not options.canvas.single_use_verifier
    assert options.canvas.token_permissions == frozenset({"read_roster", "view_analytics"})
    assert options.gateway.rewrite_links


@pytest.mark.parametrize(("flags", "message"), [(["--roster-churn", "2"], "roster_churn"),
                                                (["--throttle-hwm", "900"], "maximum >= hwm"),
                                                (["--outage-seconds", "0"], "outage seconds")])
def test_bad_option_values_get_one_line_and_exit_2(capsys, flags, message):
    with pytest.raises(SystemExit) as exited:
        main(["serve", *flags])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error and "Traceback" not in error


def test_help_documents_every_option():
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]          # noqa: SLF001 - inspect argparse
    for action in serve._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{action.option_strings} lacks help"
    text = serve.format_help()
    for option in ("--latency-ms", "--fault-rate", "--fault-bad-json", "--throttle-status", "--token-ttl",
                   "--port-base", "--env-file", "--udw-dbname", "--inventory-dbname", "--udw-lag-missing",
                   "--udw-lag-stale", "--throttle-hwm", "--throttle-outflow", "--throttle-up-front",
                   "--throttle-maximum", "--outage-after-requests", "--outage-seconds", "--outage-hosts",
                   "--outage-mode", "--roster-churn", "--token-permissions", "--gateway-rewrite-links",
                   "--reusable-verifiers", "--max-consecutive-faults"):
        assert option in text


def test_describe_prints_generated_counts(capsys):
    from sandbox.generator import describe, generate_university

    assert main(["describe", "--scale", "small", "--seed", "3"]) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.strip().splitlines())
    assert printed == {k: str(v) for k, v in describe(generate_university("small", 3)).items()}


def test_serve_runs_until_sigterm_and_prints_stats(tmp_path):
    env_file = tmp_path / "env.hjson"
    with serve_process("--services", "--env-file", str(env_file), "--latency-ms", "1",
                       "--log-level", "WARNING") as process:
        lines = lines_until(process, "Serving")
        urls = dict(line.strip().rsplit(maxsplit=1) for line in lines[:-1])
        assert set(urls) == {"canvas", "gateway", "env file"} and urls["env file"] == str(env_file)
        env = environ.load_env(env_file)
        assert "UDW" not in env                                     # serve without --udw-dbname: no warehouse
        got = requests.get(f"{urls['canvas']}/api/v1/accounts/1", timeout=5,
                           headers={"Authorization": f"Bearer {env['CANVAS']['CANVAS_TOKEN']}"})
        assert got.status_code == 200
        out, err = stop(process)
    assert process.returncode == 0, err
    stats = json.loads(out)
    assert stats["servers"]["canvas"]["requests"] == 1


def test_env_file_path_default_is_ignored_by_git():
    default = build_parser().parse_args(["serve"]).env_file
    assert Path(default).parent == ROOT / "config" / "secrets"


def test_the_benchmark_passes_its_sandbox_options_through():
    import argparse

    from bench.course_inventory import add_sandbox_arguments, sandbox_flags

    bench = argparse.ArgumentParser()
    add_sandbox_arguments(bench)
    args = bench.parse_args(["--throttle-hwm", "300", "--throttle-up-front", "100", "--roster-churn", "0.1",
                             "--outage-after-requests", "2000", "--outage-seconds", "30", "--outage-hosts",
                             "canvas", "gateway"])
    serve = build_parser().parse_args(["serve", *sandbox_flags(args)])
    options = sandbox_options(serve, env_file=None, udw_dbname=None, inventory_dbname=None)
    assert options.throttle == ThrottleOptions(enabled=True, hwm=300, up_front=100)
    assert options.canvas.roster_churn == 0.1
    assert options.outage.after_requests == 2000 and options.outage_hosts == ("canvas", "gateway")
