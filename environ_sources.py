"""Configuration values from outside the file: environment variables and a directory of secret files.

A name is a key path, one level per double underscore: `LOG_LEVEL`, `CANVAS__CANVAS_TOKEN`, `INVENTORY_DB__password`.
A value is parsed as JSON when it is valid JSON, else used as text; a key the schema types as a string always
takes the text as it is (a password `123456` stays a string). A secrets directory is laid out the way Kubernetes
mounts a Secret (kubernetes.io docs, "Secrets: using Secrets as files from a Pod"): one file per key, the value
its content; its `..data` bookkeeping entries and other dot-names are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environ_keys import KeyPath, dotted, expects_only_string
from vocab import ConfigError

SEPARATOR = "__"


@dataclass(frozen=True)
class Override:
    path: KeyPath
    raw: str
    origin: str          # "the environment variable X" / "the secrets file D/X": named in messages, never the value


def key_path(name: str) -> KeyPath:
    return tuple(part for part in name.split(SEPARATOR))


def environment_overrides(environment: Mapping[str, str], top_level_keys: set[str]) -> list[Override]:
    """Variables whose first path element is a configuration key (the environment holds much else: PATH...)."""
    found = []
    for name, raw in environment.items():
        path = key_path(name)
        if path[0] in top_level_keys and all(path):
            found.append(Override(path, raw, f"the environment variable {name}"))
    return sorted(found, key=lambda override: override.path)


def secret_file_overrides(directory: Path) -> list[Override]:
    """One override per regular file of `directory` (symlinks followed); trailing newlines are not part of values."""
    try:
        entries = sorted(directory.iterdir())
    except NotADirectoryError:
        raise ConfigError(f"ENV_SECRETS_DIR {directory} is not a directory") from None
    except FileNotFoundError:
        raise ConfigError(f"ENV_SECRETS_DIR {directory} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot list ENV_SECRETS_DIR {directory}: {exc.strerror}") from None
    found = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            raw = entry.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the secrets file {entry}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"the secrets file {entry} is not UTF-8 text") from None
        if all(key_path(entry.name)):
            found.append(Override(key_path(entry.name), raw, f"the secrets file {entry}"))
    return found


def parse_value(raw: str, *, only_string: bool) -> tuple[Any, bool]:
    """(value, whether it was read as JSON)."""
    if only_string:
        try:
            decoded = json.loads(raw)
        except ValueError:
            return raw, False
        return (decoded, True) if isinstance(decoded, str) else (raw, False)
    try:
        return json.loads(raw), True
    except ValueError:
        return raw, False


@dataclass
class Applied:
    origins: dict[KeyPath, str]      # key path -> where its value came from (when not the file)
    not_json: set[KeyPath]           # paths whose value was not valid JSON (kept as text)
    problems: list[str]


def apply_overrides(config: MutableMapping[str, Any], overrides: list[Override], schema: Mapping[str, Any],
                    applied: Applied) -> None:
    """Set each override's key inside `config`, creating missing sections, never replacing a whole section."""
    for override in overrides:
        node: MutableMapping[str, Any] = config
        *parents, last = override.path
        for depth, key in enumerate(parents):
            child = node.setdefault(key, {})
            if not isinstance(child, MutableMapping):
                applied.problems.append(f"{dotted(override.path)}: {dotted(override.path[:depth + 1])} is not an "
                                        f"object, so {override.origin} cannot set a key inside it")
                break
            node = child
        else:
            node[last], parsed = parse_value(override.raw, only_string=expects_only_string(schema, override.path))
            applied.origins[override.path] = override.origin
            if not parsed:
                applied.not_json.add(override.path)
