"""deploy/: valid Kubernetes objects (the JSON schemas kubernetes-validate ships, offline), a CronJob sized and
secured as README says, and a ConfigMap and Secrets that together make a valid configuration."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import hjson
import kubernetes_validate
import pytest
import yaml

import environ
from db.schema_migrations import MIGRATION_LOCK_WAIT_S
from mivideo.settings import settings_from_env
from vocab import ConfigError, ValidJobName

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy").glob("*.yaml"))
# The oldest Kubernetes of a supported OpenShift (4.14: 1.27) and the newest schemas the package ships.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
DAY = 24 * 3600


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str, name: str | None = None) -> dict[str, Any]:
    (doc,) = [d for d in documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return doc


def pod_spec() -> dict[str, Any]:
    return by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    return only


def env_vars() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"]}


def mount(name: str) -> dict[str, Any]:
    (found,) = [m for m in container()["volumeMounts"] if m["name"] == name]
    return found


def volume(name: str) -> dict[str, Any]:
    (found,) = [v for v in pod_spec()["volumes"] if v["name"] == name]
    return found


def configmap_settings() -> dict[str, Any]:
    return hjson.loads(by_kind("ConfigMap")["data"]["env.hjson"])


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the validation tried to reach the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_a_valid_kubernetes_object(version: str) -> None:
    assert {doc["kind"] for doc in documents()} == {"CronJob", "ConfigMap", "Secret"}
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)      # raises on any unknown or mistyped field


@pytest.mark.usefixtures("no_network")
def test_the_validator_catches_a_misspelt_field() -> None:
    cronjob = by_kind("CronJob")
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSIONS[0], strict=True)


def test_one_run_at_a_time_with_a_deadline_beyond_the_runners_own() -> None:
    spec = by_kind("CronJob")["spec"]
    job = spec["jobTemplate"]["spec"]
    settings = configmap_settings()
    runner_worst_case = (len(ValidJobName) * (settings["JOB_TIMEOUT_MINUTES"] * 60 + settings["JOB_LOCK_WAIT_SECONDS"])
                         + MIGRATION_LOCK_WAIT_S)
    assert spec["concurrencyPolicy"] == "Forbid"
    assert runner_worst_case < job["activeDeadlineSeconds"] <= runner_worst_case + 3600
    assert job["activeDeadlineSeconds"] + spec["startingDeadlineSeconds"] < DAY     # over before the next start
    assert spec["schedule"].split()[2:] == ["*", "*", "*"]                           # daily
    assert 0 < job["backoffLimit"] <= 2 and pod_spec()["restartPolicy"] == "Never"


def test_memory_is_sized_from_the_benchmarks_peak() -> None:
    readme = (ROOT / "README.md").read_text()
    large_peak_mb = max(int(mb) for mb in re.findall(r"peak memory ~(\d+) MB", readme))
    mib = {"Mi": 1, "Gi": 1024}
    resources = container()["resources"]
    request, limit = ((int(v[:-2]) * mib[v[-2:]]) for v in (resources["requests"]["memory"],
                                                             resources["limits"]["memory"]))
    assert request >= 1.25 * large_peak_mb * 1e6 / 2**20 and limit >= 1.75 * large_peak_mb * 1e6 / 2**20
    assert limit >= request


def test_the_pod_runs_unprivileged_on_a_read_only_root() -> None:
    pod, box = pod_spec()["securityContext"], container()["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "runAsUser" not in pod and "runAsUser" not in box           # OpenShift assigns the uid
    assert box["allowPrivilegeEscalation"] is False and box["readOnlyRootFilesystem"] is True
    assert box["capabilities"] == {"drop": ["ALL"]}
    writable = {m["mountPath"] for m in container()["volumeMounts"]
                if not m.get("readOnly") and "emptyDir" in volume(m["name"])}
    workdir = re.search(r"^WORKDIR (\S+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert writable == {"/tmp", f"{workdir}/data"}


def test_configuration_and_secrets_reach_the_job_as_readme_describes() -> None:
    env = env_vars()
    assert env["ENV_DIR"] == mount("config")["mountPath"] and mount("config")["readOnly"] is True
    assert env["ENV_SECRETS_DIR"] == mount("secrets")["mountPath"] and mount("secrets")["readOnly"] is True
    assert env["USER"]
    sources = volume("config")["projected"]["sources"]
    config_map = next(s["configMap"] for s in sources if "configMap" in s)
    key_file = next(s["secret"] for s in sources if "secret" in s)
    assert config_map["name"] == by_kind("ConfigMap")["metadata"]["name"]
    assert [item["path"] for item in config_map["items"]] == [env["ENV_FILE"]]
    key_name = configmap_settings()["MIVIDEO"]["udp_service_account_json_filename"]
    assert [item["path"] for item in key_file["items"]] == [key_name]
    assert key_file["name"] == by_kind("Secret", key_file["name"])["metadata"]["name"]
    secrets = by_kind("Secret", "course-inventory-secrets")
    assert volume("secrets")["secret"]["secretName"] == secrets["metadata"]["name"]


def lay_out(tmp_path: Path) -> tuple[Path, Path]:
    """The two mounted directories as the pod sees them."""
    config_dir, secrets_dir = tmp_path / "config", tmp_path / "secrets"
    config_dir.mkdir()
    secrets_dir.mkdir()
    (config_dir / env_vars()["ENV_FILE"]).write_text(by_kind("ConfigMap")["data"]["env.hjson"])
    for name, value in by_kind("Secret", "course-inventory-bigquery")["stringData"].items():
        (config_dir / name).write_text(value)
    for name, value in by_kind("Secret", "course-inventory-secrets")["stringData"].items():
        (secrets_dir / name).write_text(value + "\n")
    return config_dir, secrets_dir


def test_configmap_and_secrets_make_a_valid_configuration(tmp_path: Path) -> None:
    config_dir, secrets_dir = lay_out(tmp_path)
    env = environ.load_env(config_dir / env_vars()["ENV_FILE"], environ.SCHEMA_PATH, {}, secrets=secrets_dir,
                           strict=True)                  # strict: every Secret key is a known key path
    stored = by_kind("Secret", "course-inventory-secrets")["stringData"]
    assert env["CANVAS"]["CANVAS_TOKEN"] == stored["CANVAS__CANVAS_TOKEN"]
    assert env["INVENTORY_DB"]["password"] == stored["INVENTORY_DB__password"]
    assert settings_from_env(env, config_dir).bigquery.key_file.is_file()


def test_the_configmap_holds_no_secret(tmp_path: Path) -> None:
    settings = configmap_settings()
    for section, key in environ.SECRET_PATHS:
        assert key not in settings.get(section, {}), f"{section}.{key} belongs in the Secret"
    config_dir, _ = lay_out(tmp_path)
    with pytest.raises(ConfigError) as problem:
        environ.load_env(config_dir / env_vars()["ENV_FILE"], environ.SCHEMA_PATH, {})
    assert "CANVAS_TOKEN" in " ".join(problem.value.details)
