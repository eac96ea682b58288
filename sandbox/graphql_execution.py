"""Execution of the Canvas GraphQL simulator: graphql-core's, with lists of plain dicts serialized in one pass.

`PlainDataExecutor` completes such lists straight to JSON text (a `RawJSON` in the result); `result_json`
writes a result whose lists may already be text. Tests compare both executors' answers byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from graphql import (
    Executor,
    GraphQLBoolean,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    Undefined,
    default_field_resolver,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList

_Serialize = Callable[[Any], str]
# (JSON text of `"response key":`, field name, serializer, a Python type the field's scalar returns unchanged)
_FieldPlan = tuple[str, str, _Serialize, type | None]
# Built-in scalars whose output coercion returns values of these types as they are (graphql-core's serializers).
_UNCHANGED = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


class _NotPlain(Exception):
    """The compiled pass met something only graphql-core's own completion reproduces (an error, an object)."""


@dataclass(frozen=True, slots=True)
class RawJSON:
    """A completed list already serialized; `result_json` splices the text in as it is."""

    text: str


class PlainDataExecutor(Executor):
    """graphql-core's executor, completing lists of plain dicts straight to JSON text in one compiled pass.

    graphql-core completes every field of every list item through its general machinery (resolver call,
    info object, argument and awaitable checks, error bookkeeping), and the result is then serialized: a page
    of 1,000 enrollments with ten fields each cost ~150 ms of CPU, which stalled every other request of the
    simulator. When everything selected under a list is resolved by the default resolver (no field
    resolvers, arguments, abstract types or is_type_of), its answer is a pure projection of the dicts, so a
    serializer of that projection is compiled once per field position (as graphql-core memoizes collected
    subfields) and the list becomes a `RawJSON` in the result. Anything the projection cannot reproduce
    exactly (a null in a non-null field, a value a scalar refuses, a non-dict object, a callable) makes it
    give up and hand the list back to graphql-core, which produces its usual answer and errors. graphql-core
    documents `executor_class` for such customisation; the overridden method is internal, so the version is
    pinned and tests compare both executors' answers byte for byte.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (id of list type, id of field list) -> (the field list, kept alive so its id stays unique; plan)
        self._plans: dict[tuple[int, int], tuple[FieldDetailsList, _Serialize | None]] = {}

    def complete_list_value(self, return_type: GraphQLList[GraphQLOutputType], field_details_list: FieldDetailsList,
                            info: GraphQLResolveInfo, path: Any, result: Any, position_context: Any) -> Any:
        serialize = self._plan(return_type, field_details_list)
        if serialize is not None:
            try:
                return RawJSON(serialize(result))
            except _NotPlain:
                pass                           # graphql-core's way, errors and all
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def _plan(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList) -> _Serialize | None:
        key = (id(return_type), id(field_details_list))
        cached = self._plans.get(key)
        if cached is None:
            plain = self.field_resolver is default_field_resolver and not self.middleware_manager
            cached = (field_details_list, self._compile(return_type, field_details_list) if plain else None)
            self._plans[key] = cached
        return cached[1]

    def _compile(self, type_: GraphQLOutputType, details: FieldDetailsList) -> _Serialize | None:
        if isinstance(type_, GraphQLNonNull):
            inner = self._compile(type_.of_type, details)
            return None if inner is None else _non_null(inner)
        if isinstance(type_, GraphQLList):
            item = self._compile(type_.of_type, details)
            return None if item is None else _list_of(item)
        if is_leaf_type(type_):
            return _leaf(type_.coerce_output_value)  # type: ignore[union-attr]
        if isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
            fields = self._compile_fields(type_, details)
            return None if fields is None else _object_of(fields)
        return None                            # interfaces and unions need type resolution

    def _compile_fields(self, type_: GraphQLObjectType, details: FieldDetailsList) -> list[_FieldPlan] | None:
        grouped, defer_usages, _ = self.collect_subfields(type_, details)   # fragments, @skip/@include
        if defer_usages:
            return None
        fields: list[_FieldPlan] = []
        for response_key, sub_details in grouped.items():
            key = encode_basestring_ascii(response_key) + ":"
            node = sub_details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((key, name, _constant(encode_basestring_ascii(type_.name)), None))
                continue
            field = type_.fields.get(name)
            if field is None or field.resolve is not None or any(d.node.arguments for d in sub_details):
                return None
            serialize = self._compile(field.type, sub_details)
            if serialize is None:
                return None
            named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            fields.append((key, name, serialize, _UNCHANGED.get(named)))  # type: ignore[call-overload]
        return fields


def _non_null(inner: _Serialize) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            raise _NotPlain
        return inner(value)
    return serialize


def _list_of(item: _Serialize) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            return "null"
        if not isinstance(value, list | tuple):
            raise _NotPlain
        return "[" + ",".join([item(v) for v in value]) + "]"
    return serialize


def _leaf(coerce: Callable[[Any], Any]) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            return "null"
        try:
            coerced = coerce(value)
            if coerced is None or coerced is Undefined:
                raise _NotPlain
            return json_scalar(coerced)
        except Exception as exc:               # graphql-core reports it as a field error
            raise _NotPlain from exc
    return serialize


def _object_of(fields: list[_FieldPlan]) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            return "null"
        if type(value) is not dict:
            raise _NotPlain
        parts = []
        for key, name, serialize_field, unchanged in fields:
            field_value = value.get(name)
            if type(field_value) is unchanged:       # the hot case: a str for a String/ID field
                parts.append(key + (encode_basestring_ascii(field_value) if unchanged is str
                                    else "true" if field_value else "false"))
                continue
            if callable(field_value) or isinstance(field_value, BaseException):
                raise _NotPlain                # the default resolver would call it / raise it
            parts.append(key + serialize_field(field_value))
        return "{" + ",".join(parts) + "}"
    return serialize


def _constant(text: str) -> _Serialize:
    return lambda _ignored: text


def json_scalar(value: Any) -> str:
    """A leaf as `json.dumps(value, separators=(",", ":"))` writes it."""
    if type(value) is str:
        return encode_basestring_ascii(value)
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value)                   # floats (NaN, Infinity as json writes them), anything else


def result_json(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"))` of a result whose lists may be `RawJSON` already."""
    if isinstance(value, RawJSON):
        return value.text
    if isinstance(value, dict) and all(type(key) is str for key in value):
        return "{" + ",".join([encode_basestring_ascii(k) + ":" + result_json(v) for k, v in value.items()]) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join([result_json(v) for v in value]) + "]"
    return json.dumps(value, separators=(",", ":"))


def never_awaitable(_value: Any) -> bool:
    return False                               # every resolver here is synchronous: skip graphql-core's probe
