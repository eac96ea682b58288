"""Navigating the configuration schema: which keys exist where, what a key expects, the nearest known key (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

KeyPath = tuple[str, ...]


def resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow `$ref` (local `#/...` references only, all this schema uses)."""
    while "$ref" in node:
        target: Any = root
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _branches(node: Mapping[str, Any], root: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The node and, recursively, its `allOf` members and their `then` parts (conditional requirements)."""
    node = resolve(node, root)
    yield node
    for member in node.get("allOf", ()):
        yield from _branches(member, root)
        if isinstance(member.get("then"), Mapping):
            yield from _branches(member["then"], root)


def properties(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """key -> every schema that constrains it at this level (a key may be described by several branches)."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for branch in _branches(node, root):
        for key, sub in branch.get("properties", {}).items():
            found.setdefault(key, []).append(sub)
    return found


def describes_object(node: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    return any(branch.get("type") == "object" or "properties" in branch for branch in _branches(node, root))


def nodes_at(schema: Mapping[str, Any], path: Sequence[str]) -> list[Mapping[str, Any]]:
    """Every schema describing the value at `path` (empty when the path is unknown)."""
    current = [schema]
    for key in path:
        current = [sub for node in current for sub in properties(node, schema).get(key, [])]
        if not current:
            return []
    return [resolve(node, schema) for node in current]


def expects_only_string(schema: Mapping[str, Any], path: Sequence[str]) -> bool:
    """True when the key is known and every type it allows is "string" (a password "123456" stays a string)."""
    types: set[str] = set()
    for node in nodes_at(schema, path):
        declared = node.get("type")
        types.update(declared if isinstance(declared, list) else [declared] if declared else [])
    return types == {"string"}


def nearest(key: str, candidates: Sequence[str]) -> str | None:
    """The most similar known key, ignoring case (difflib's ratio, at least 0.6)."""
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    match = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def unknown_keys(config: Mapping[str, Any], schema: Mapping[str, Any],
                 nodes: Sequence[Mapping[str, Any]] | None = None,
                 path: KeyPath = ()) -> list[tuple[KeyPath, str | None]]:
    """(path, nearest known key) of every key the schema does not describe, nested sections included."""
    known: dict[str, list[Mapping[str, Any]]] = {}
    for node in [schema] if nodes is None else nodes:
        for key, subs in properties(node, schema).items():
            known.setdefault(key, []).extend(subs)
    found: list[tuple[KeyPath, str | None]] = []
    for key, value in config.items():
        if key not in known:
            found.append(((*path, key), nearest(key, list(known))))
        elif isinstance(value, Mapping) and any(describes_object(sub, schema) for sub in known[key]):
            found.extend(unknown_keys(value, schema, known[key], (*path, key)))
    return found


def dotted(path: Sequence[Any]) -> str:
    return ".".join(str(part) for part in path) or "(top level)"
