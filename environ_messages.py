"""One line per configuration problem: the key path and what is wrong, never the value (it may be a secret)."""

from __future__ import annotations

from collections.abc import Mapping

import jsonschema

from environ_keys import KeyPath, dotted

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}
_SIMPLE = {
    "format": "is not a valid {}",
    "enum": "must be one of {}",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be more than {}",
    "minItems": "must have at least {} item(s)",
    "minLength": "must not be empty",
}


def describe(error: jsonschema.ValidationError, origins: Mapping[KeyPath, str], not_json: set[KeyPath]) -> str:
    """The problem, followed by where the value came from when that was not the file."""
    path = tuple(str(part) for part in error.absolute_path)
    return _problem(error, path, not_json) + _origin(path, origins)


def _problem(error: jsonschema.ValidationError, path: KeyPath, not_json: set[KeyPath]) -> str:
    where, kind, expected = dotted(path), error.validator, error.validator_value
    if kind == "required":
        missing = [key for key in expected if isinstance(error.instance, dict) and key not in error.instance]
        return f"{'' if not path else where + ': '}missing required key {', '.join(missing)}"
    if kind == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        actual = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
        message = f"{where}: must be {_article(wanted)}, got {actual}"
        if any(path[:len(p)] == p for p in not_json):
            message += " (its value is not valid JSON)"
        return message
    if kind == "pattern":
        return f"{where}: {_pattern_hint(where)}"
    if kind == "minItems" and path[-1:] == ("CANVAS_TERM_IDS",):
        return f"{where}: must not be empty: COURSE_INVENTORY and CANVAS_ZOOM_MEETINGS read these terms"
    if kind in _SIMPLE:
        shown = ", ".join(map(str, expected)) if kind == "enum" else expected
        return f"{where}: {_SIMPLE[kind].format(shown)}"
    return f"{where}: fails the '{kind}' rule of the schema"


def _origin(path: KeyPath, origins: Mapping[KeyPath, str]) -> str:
    """A value set from outside the file (or a section something outside the file reached into) says so."""
    exact = [origin for key, origin in origins.items() if path[:len(key)] == key]
    inside = [origin for key, origin in origins.items() if path and key[:len(path)] == path and key != path]
    named = exact or inside
    return f" (set by {', '.join(sorted(set(named)))}, not the file)" if named else ""


def _article(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _pattern_hint(where: str) -> str:
    if where.endswith("port"):
        return "must be a port number, e.g. 3306 or \"3306\""
    if where.endswith(("_URL", "_url", "BASE_URL")):
        return "must be an http(s) URL"
    return "has an invalid format"


def unknown_key_line(path: KeyPath, suggestion: str | None, origins: Mapping[KeyPath, str]) -> str:
    hint = f" (did you mean {suggestion}?)" if suggestion else ""
    return f"{dotted(path)}: unknown key{hint}{_origin(path, origins)}"
