"""Configuration: an HJSON file, overridden by a secrets directory and environment variables, checked by a JSON Schema.

`load_env()` is pure apart from reading its files (file + overrides in, read-only mapping or ConfigError out; unknown
keys are logged as warnings, or refused when strict). `from environ import ENV` keeps working for jobs run outside
the runner through a lazy, cached module attribute; the runner passes the configuration to jobs instead.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import hjson
import jsonschema

from app_paths import default_config_dir
from environ_keys import properties, resolve, unknown_keys
from environ_messages import describe, unknown_key_line
from environ_sources import Applied, apply_overrides, environment_overrides, secret_file_overrides
from vocab import JOB_REQUIREMENTS, ConfigError, ValidJobName

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG_DIR = default_config_dir()       # the checkout's config/secrets, or ./config/secrets when installed
DEFAULT_CONFIG_FILE = "env.hjson"
SCHEMA_PATH = ROOT / "config" / "env_schema.hjson"
PORT_PATHS = (("INVENTORY_DB", "port"), ("UDW", "port"))

Env = Mapping[str, Any]

# Key paths whose values must never be shown (messages never print values anyway; this list also
# feeds the log redaction filter and the scrubbing of job_run_log reasons).
SECRET_PATHS = (
    ("CANVAS", "CANVAS_TOKEN"),
    ("CANVAS", "API_CLIENT_SECRET"),
    ("MIVIDEO", "kaltura_user_secret"),
    ("UDW", "password"),
    ("INVENTORY_DB", "password"),
)


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("ENV_DIR") or DEFAULT_CONFIG_DIR)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return config_dir(environ) / (environ.get("ENV_FILE") or DEFAULT_CONFIG_FILE)


def secrets_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """ENV_SECRETS_DIR: a directory of one file per secret key (e.g. a mounted Kubernetes Secret), if set."""
    environ = os.environ if environ is None else environ
    value = environ.get("ENV_SECRETS_DIR")
    return Path(value) if value else None


def load_env(path: Path, schema_path: Path = SCHEMA_PATH, overrides: Mapping[str, str] | None = None, *,
             secrets: Path | None = None, job_names: Sequence[str] | None = None, strict: bool = False) -> Env:
    """Read, override, check and complete the configuration; raise ConfigError listing every problem.

    Precedence: the file, then `secrets` (a directory of key files), then `overrides` (the environment), then
    `job_names` (the command line's --jobs, which also decides which job sections are required).
    """
    schema = _with_job_conditions(_read_hjson(schema_path, "schema"))
    config = _read_config(path)
    applied = _merge_sources(config, schema, overrides or {}, secrets)
    if job_names is not None:
        config["JOB_NAMES"] = list(job_names)
    _normalise_log_level(config)

    unknown = [unknown_key_line(key, hint, applied.origins) for key, hint in unknown_keys(config, schema)]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    problems = applied.problems + [describe(error, applied.origins, applied.not_json)
                                   for error in validator.iter_errors(config)]
    if not strict:
        for line in unknown:
            logger.warning("configuration: %s; ignored", line)
    problems = sorted(set(problems + (unknown if strict else [])))
    if problems:
        raise ConfigError(f"the configuration ({path.name}) is invalid ({len(problems)} problem(s))", details=problems)
    _apply_defaults(config, schema, schema)
    _normalise_ports(config)
    return _freeze(config)


def with_defaults(env: Mapping[str, Any]) -> Env:
    """`env` with the schema's defaults filled where keys are absent (idempotent: a loaded configuration already
    has them). Jobs called from code with a mapping of their own get the same values the runner would give."""
    config = _thawed(env)
    _apply_defaults(config, _schema(), _schema())
    return _freeze(config)


def job_env(env: Mapping[str, Any] | None) -> Env:
    """What a job reads: the configuration it was handed, completed with defaults, or the runner's own."""
    return get_env() if env is None else with_defaults(env)


@functools.cache
def _schema() -> Mapping[str, Any]:
    return _with_job_conditions(_read_hjson(SCHEMA_PATH, "schema"))


def _with_job_conditions(schema: dict[str, Any]) -> dict[str, Any]:
    """One `if JOB_NAMES contains the job then its requirements` per vocab.ValidJobName member (job names are
    matched in any case, as the runner does)."""
    conditions = [{"if": {"required": ["JOB_NAMES"],
                          "properties": {"JOB_NAMES": {"contains": {"pattern": f"^(?i:{job.name})$"}}}},
                   "then": {"$ref": f"#/definitions/requirements/{JOB_REQUIREMENTS[job]}"}}
                  for job in ValidJobName]
    return {**schema, "allOf": [*schema.get("allOf", []), *conditions]}


def _merge_sources(config: dict[str, Any], schema: Mapping[str, Any], environment: Mapping[str, str],
                   secrets: Path | None) -> Applied:
    applied = Applied({}, set(), [])
    known = set(config) | set(properties(schema, schema))
    if secrets is not None:
        apply_overrides(config, secret_file_overrides(secrets), schema, applied)
    apply_overrides(config, environment_overrides(environment, known), schema, applied)
    return applied


def _read_config(path: Path) -> dict[str, Any]:
    _check_config_file(path)
    config = _read_hjson(path, "configuration file")
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: the configuration must be an object of keys")
    return config


def _check_config_file(path: Path) -> None:
    """Name the real cause: a missing or unsearchable directory, a directory given as the file, a missing file."""
    directory = path.parent
    try:
        directory_mode = directory.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"configuration directory {directory} does not exist (set ENV_DIR to the directory)"
                          ) from None
    except OSError as exc:
        raise ConfigError(f"cannot reach the configuration directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(directory_mode):
        raise ConfigError(f"configuration directory {directory} is not a directory (ENV_DIR names a directory)")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist (copy config/env_blank.hjson there, "
                          "or set ENV_DIR / ENV_FILE)") from None
    except PermissionError:
        raise ConfigError(f"cannot read the configuration file {path}: permission denied (the directory {directory} "
                          "must be searchable by this user)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"configuration file {path} is a directory, not a file (ENV_FILE names the file inside "
                          "ENV_DIR)")


def _read_hjson(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {what} {path}: not UTF-8 text") from None
    try:
        return hjson.loads(text)
    except hjson.HjsonDecodeError as exc:
        # exc.msg describes the problem without quoting the offending (possibly secret) text.
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(f"{path.name} is not valid HJSON: {exc.msg} at {where}") from None


def _normalise_log_level(config: dict[str, Any]) -> None:
    """Log levels and formats are accepted in any case (LOG_LEVEL=debug, LOG_FORMAT=JSON)."""
    if isinstance(config.get("LOG_LEVEL"), str):
        config["LOG_LEVEL"] = config["LOG_LEVEL"].strip().upper()
    if isinstance(config.get("LOG_FORMAT"), str):
        config["LOG_FORMAT"] = config["LOG_FORMAT"].strip().lower()


def _normalise_ports(config: dict[str, Any]) -> None:
    """Ports may be written as numbers or strings; the program uses strings (checked before this)."""
    for section, key in PORT_PATHS:
        value = config.get(section, {}).get(key) if isinstance(config.get(section), dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            config[section][key] = str(value)


def _apply_defaults(config: dict, schema: Mapping, root: Mapping) -> None:
    """Fill schema `default`s of absent object properties (recursively, through $ref and allOf)."""
    for key, subs in properties(schema, root).items():
        for sub in (resolve(s, root) for s in subs):
            if key not in config and "default" in sub:
                config[key] = copy.deepcopy(sub["default"])
            if isinstance(config.get(key), dict):
                _apply_defaults(config[key], sub, root)


def _thawed(value: Any) -> Any:
    """A plain, mutable deep copy of a (possibly frozen) configuration."""
    if isinstance(value, Mapping):
        return {key: _thawed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thawed(item) for item in value]
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def secret_values(env: Env) -> list[str]:
    """The configured secrets (non-empty), for log redaction."""
    values = []
    for section, key in SECRET_PATHS:
        value = env.get(section, {}).get(key) if isinstance(env.get(section), Mapping) else None
        if isinstance(value, str) and value:
            values.append(value)
    return values


@functools.cache
def get_env() -> Env:
    return load_env(config_path(), SCHEMA_PATH, os.environ, secrets=secrets_dir())


def __getattr__(name: str) -> Any:  # PEP 562: `from environ import ENV` loads on first use
    if name == "ENV":
        return get_env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
