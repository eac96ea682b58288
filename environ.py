"""Configuration: an HJSON file, overridden by environment variables, validated by a JSON Schema.

`load_env()` is pure (file + overrides in, read-only mapping or ConfigError out). `from environ import ENV`
keeps working for jobs (SPEC §3) through a lazy, cached module attribute.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import hjson
import jsonschema

from vocab import ConfigError

ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG_DIR = ROOT / "config" / "secrets"
DEFAULT_CONFIG_FILE = "env.hjson"
SCHEMA_PATH = ROOT / "config" / "env_schema.hjson"

Env = Mapping[str, Any]

# Key paths whose values must never be shown (messages never print values anyway; this list also
# feeds the log redaction filter).
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


def load_env(path: Path, schema_path: Path = SCHEMA_PATH, overrides: Mapping[str, str] | None = None) -> Env:
    """Read, override, validate and complete the configuration; raise ConfigError listing every problem."""
    schema = _read_hjson(schema_path, "schema")
    if not path.parent.is_dir():
        raise ConfigError(f"configuration directory {path.parent} does not exist (set ENV_DIR to the directory)")
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist (copy config/env_blank.hjson there, "
                          "or set ENV_DIR / ENV_FILE)")
    config = _read_hjson(path, "configuration file")
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: the configuration must be an object of keys")

    not_json: set[str] = set()
    known = set(config) | set(schema.get("properties", {}))
    for key, raw in (overrides or {}).items():
        if key in known:  # only configuration keys; the environment holds much else (PATH, USER...)
            config[key], parsed = _parse_override(raw)
            if not parsed:
                not_json.add(key)

    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    problems = sorted({_describe(error, not_json) for error in validator.iter_errors(config)})
    if problems:
        raise ConfigError(f"{path.name} is invalid ({len(problems)} problem(s))", details=problems)
    _apply_defaults(config, schema, schema)
    return _freeze(config)


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


def _parse_override(raw: str) -> tuple[Any, bool]:
    """JSON when the variable's value is valid JSON, else the plain string."""
    try:
        return json.loads(raw), True
    except ValueError:
        return raw, False


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


def _describe(error: jsonschema.ValidationError, not_json: set[str]) -> str:
    """One line naming the key path and what is wrong, never the value (it may be a secret)."""
    path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    kind, expected = error.validator, error.validator_value
    actual = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
    if kind == "required":
        missing = [key for key in expected if isinstance(error.instance, dict) and key not in error.instance]
        where = "" if path == "(top level)" else f"{path}: "
        return f"{where}missing required key {', '.join(missing)}"
    if kind == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        message = f"{path}: must be {_article(wanted)}, got {actual}"
        top = error.absolute_path[0] if error.absolute_path else None
        if top in not_json:
            message += f" (the environment variable {top} is not valid JSON)"
        return message
    if kind == "additionalProperties":
        return f"{path}: unknown key(s) {_extra_keys(error)}"
    if kind == "pattern":
        return f"{path}: {_pattern_hint(path)}"
    messages = {
        "format": "is not a valid {}",
        "enum": "must be one of {}",
        "minimum": "must be at least {}",
        "maximum": "must be at most {}",
        "minItems": "must have at least {} item(s)",
        "minLength": "must not be empty",
    }
    if kind in messages:
        shown = ", ".join(map(str, expected)) if kind == "enum" else expected
        return f"{path}: {messages[kind].format(shown)}"
    return f"{path}: fails the '{kind}' rule of the schema"


def _article(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _pattern_hint(path: str) -> str:
    if path.startswith("JOB_NAMES"):
        return "unknown job name (known: COURSE_INVENTORY, MIVIDEO, CANVAS_ZOOM_MEETINGS)"
    if path.endswith("port"):
        return "must be a port number written as a string, e.g. \"3306\""
    if path.endswith(("_URL", "_url", "BASE_URL")):
        return "must be an http(s) URL"
    return "has an invalid format"


def _extra_keys(error: jsonschema.ValidationError) -> str:
    allowed = set(error.schema.get("properties", {}))
    return ", ".join(sorted(key for key in error.instance if key not in allowed))


def _apply_defaults(config: dict, schema: Mapping, root: Mapping) -> None:
    """Fill schema `default`s of absent object properties (recursively, through $ref)."""
    if "$ref" in schema:
        schema = _resolve(schema["$ref"], root)
    for key, sub in schema.get("properties", {}).items():
        if "$ref" in sub:
            sub = _resolve(sub["$ref"], root)
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict):
            _apply_defaults(config[key], sub, root)


def _resolve(ref: str, root: Mapping) -> Mapping:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


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
    return load_env(config_path(), SCHEMA_PATH, os.environ)


def __getattr__(name: str) -> Any:  # PEP 562: `from environ import ENV` loads on first use
    if name == "ENV":
        return get_env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
