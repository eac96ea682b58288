"""The limits Canvas puts on a GraphQL query before executing it, computed as graphql-ruby computes them.

Settings: canvas-lms `config/initializers/plugin_setup.rb`, the `graphql_tuning` plugin's defaults, applied by
`app/graphql/canvas_schema.rb` (`max_depth`, `max_complexity`, `default_page_size`, `default_max_page_size`,
`max_query_string_tokens`) and `app/graphql/canvas_antiabuse_analyzer.rb` (aliases, directives). Rules:
- tokens (graphql-ruby `lib/graphql/language/lexer.rb`): every token counts, comments included; past the limit
  parsing stops with "This query is too large to execute.";
- `CanvasAntiabuseAnalyzer#on_leave_field` counts every field node of the selected operation that has an
  alias, and every directive on a field node, fragments visited at each spread, skipped fields included; over
  the limit either way the message is "max query aliases exceeded" (the directive branch reuses the aliases
  message in canvas-lms);
- depth (`lib/graphql/analysis/query_depth.rb`): nesting of fields that are not skipped, introspection fields
  included (`count_introspection_fields` defaults to true);
- complexity (`lib/graphql/analysis/query_complexity.rb`, `lib/graphql/schema/field.rb#calculate_complexity`):
  each field costs 1 plus its children, selections with the same response key merged, abstract types scored
  per possible type (the most expensive wins); a connection costs 1 + page size x (children - metadata) +
  metadata, where metadata is 1 per selection on the connection plus the subselections of each one other than
  `nodes`/`edges`, and the page size is the larger of `first` and `last` as given (not capped), else the
  schema's `default_page_size`.
Analysis errors are listed in graphql-ruby's analyzer order (anti-abuse, depth, complexity) and stop execution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    VariableNode,
    get_named_type,
    is_abstract_type,
    parse,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values, get_variable_values

TOO_LARGE = "This query is too large to execute."
ALIASES_EXCEEDED = "max query aliases exceeded"
PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True)
class GraphQLLimits:
    """canvas-lms plugin_setup.rb, graphql_tuning defaults."""

    max_depth: int = 15
    max_complexity: int = 375_000
    default_page_size: int = 20
    default_max_page_size: int = 100
    max_query_string_tokens: int = 5_000
    max_query_aliases: int = 20
    max_query_directives: int = 5


def parse_within_limits(query: str, limits: GraphQLLimits) -> DocumentNode:
    """Parse, stopping past the token limit with graphql-ruby's error (graphql-core counts comments too)."""
    try:
        return parse(query, max_tokens=limits.max_query_string_tokens)
    except GraphQLSyntaxError as error:
        if "tokens. Parsing aborted." not in error.message:
            raise
        raise GraphQLError(TOO_LARGE, source=error.source, positions=error.positions) from error


def analysis_variables(document: DocumentNode) -> frozenset[str]:
    """Variables the analysis depends on: page sizes of fields and the conditions of @skip/@include."""
    names: set[str] = set()
    pending: list[Any] = list(document.definitions)
    while pending:
        node = pending.pop()
        for argument in getattr(node, "arguments", None) or ():
            if isinstance(argument.value, VariableNode) and argument.name.value in (*PAGE_ARGUMENTS, "if"):
                names.add(argument.value.name.value)
        pending.extend(getattr(node, "directives", None) or ())
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            pending.extend(selection_set.selections)
    return frozenset(names)


def analyze(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
            raw_variables: dict[str, Any], limits: GraphQLLimits) -> list[dict[str, Any]]:
    """graphql-ruby's analysis errors for a valid document (formatted), or [] when it may run.

    Only the variables `analysis_variables` lists are read, so the answer is a function of those alone.
    Nothing is reported when the operation or those variables are unusable: execution reports that.
    """
    operation = _operation(document, operation_name)
    if operation is None:
        return []
    used = analysis_variables(document)
    definitions = [d for d in operation.variable_definitions or () if d.variable.name.value in used]
    variables = get_variable_values(schema, definitions, raw_variables)
    if not isinstance(variables, VariableValues):
        return []
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = schema.get_root_type(operation.operation)
    if root is None:
        return []
    walk = _Walk(schema, fragments, variables)
    top = _Scope(None)
    walk.selections(operation.selection_set, root, 0, False, top)
    errors = []
    if walk.aliases > limits.max_query_aliases or walk.directives > limits.max_query_directives:
        errors.append(ALIASES_EXCEEDED)
    if walk.max_depth > limits.max_depth:
        errors.append(f"Query has depth of {walk.max_depth}, which exceeds max depth of {limits.max_depth}")
    complexity = _Cost(schema, variables, limits).of_scopes([top])
    if complexity > limits.max_complexity:
        errors.append(f"Query has complexity of {complexity}, which exceeds max complexity of "
                      f"{limits.max_complexity}")
    return [{"message": message} for message in errors]


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


@dataclass
class _Scope:
    """A field selection (merged across fragments by parent type and response key) and its children."""

    definition: GraphQLField | None
    nodes: list[FieldNode] = field(default_factory=list)
    children: dict[GraphQLNamedType, dict[str, _Scope]] = field(default_factory=dict)


class _Walk:
    """One depth-first visit of the selected operation (fragments inlined at each spread)."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: VariableValues) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables
        self.aliases = self.directives = self.max_depth = 0

    def selections(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, depth: int,
                   skipping: bool, scope: _Scope) -> None:
        for selection in selection_set.selections if selection_set else ():
            skipped = skipping or self._skipped(selection)
            if isinstance(selection, FieldNode):
                self._field(selection, parent, depth, skipped, scope)
            elif isinstance(selection, InlineFragmentNode):
                inner = self._type(selection.type_condition.name.value) if selection.type_condition else parent
                self.selections(selection.selection_set, inner or parent, depth, skipped, scope)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    inner = self._type(fragment.type_condition.name.value) or parent
                    self.selections(fragment.selection_set, inner, depth, skipped, scope)

    def _field(self, node: FieldNode, parent: GraphQLNamedType, depth: int, skipped: bool, scope: _Scope) -> None:
        self.aliases += node.alias is not None
        self.directives += len(node.directives or ())
        definition = self._definition(parent, node.name.value)
        child_scope = scope
        if not skipped:
            self.max_depth = max(self.max_depth, depth + 1)
            key = node.alias.value if node.alias else node.name.value
            by_key = scope.children.setdefault(parent, {})
            child_scope = by_key.setdefault(key, _Scope(definition))
            child_scope.nodes.append(node)
        inner = get_named_type(definition.type) if definition is not None else None
        if inner is not None:
            self.selections(node.selection_set, inner, depth + 1, skipped, child_scope)

    def _definition(self, parent: GraphQLNamedType, name: str) -> GraphQLField | None:
        meta = {"__typename": TypeNameMetaFieldDef, "__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}
        if name in meta:
            return meta[name]
        fields = getattr(parent, "fields", None)
        return fields.get(name) if fields else None

    def _type(self, name: str) -> GraphQLNamedType | None:
        return self.schema.get_type(name)

    def _skipped(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return bool(skip and skip.get("if")) or bool(include is not None and not include.get("if"))


class _Cost:
    """graphql-ruby's max possible complexity over a scope tree."""

    def __init__(self, schema: GraphQLSchema, variables: VariableValues, limits: GraphQLLimits) -> None:
        self.schema, self.variables, self.limits = schema, variables, limits

    def of_scopes(self, scopes: list[_Scope]) -> int:
        """merged_max_complexity_for_scopes: the most expensive possible type's selections."""
        possible: dict[GraphQLNamedType, None] = {}
        for scope in scopes:
            for scope_type in scope.children:
                for concrete in self._concrete(scope_type):
                    possible.setdefault(concrete, None)
        best = 0
        for concrete in possible:
            inner = [selections for scope in scopes for scope_type, selections in scope.children.items()
                     if concrete in self._concrete(scope_type)]
            best = max(best, self._merged(inner))
        return best

    def _merged(self, inner: list[dict[str, _Scope]]) -> int:
        by_key: dict[str, list[_Scope]] = {}
        for selections in inner:
            for key, scope in selections.items():
                by_key.setdefault(key, []).append(scope)
        total = 0
        for scopes in by_key.values():
            children = self.of_scopes(scopes) if any(s.children for s in scopes) else 0
            total += max(self._own(scope, children) for scope in scopes)
        return total

    def _own(self, scope: _Scope, children: int) -> int:
        """Field#calculate_complexity with the default complexity of 1."""
        definition = scope.definition
        if definition is None or not get_named_type(definition.type).name.endswith("Connection"):
            return 1 + children
        page_size = self._page_size(definition, scope.nodes[0])
        metadata = 0
        for selections in scope.children.values():
            for child in selections.values():
                metadata += 1
                name = child.nodes[0].name.value
                if name not in ("nodes", "edges"):
                    metadata += sum(len(grand) for grand in child.children.values())
        return 1 + page_size * (children - metadata) + metadata

    def _page_size(self, definition: GraphQLField, node: FieldNode) -> int:
        try:
            arguments = get_argument_values(definition, node, self.variables)
        except GraphQLError:
            return self.limits.default_page_size
        sizes = [arguments.get(name) for name in PAGE_ARGUMENTS]
        given = [size for size in sizes if isinstance(size, int)]
        return max(given) if given else self.limits.default_page_size

    def _concrete(self, named: GraphQLNamedType) -> Iterable[GraphQLNamedType]:
        if is_abstract_type(named):
            return tuple(self.schema.get_possible_types(named))  # type: ignore[arg-type]
        return (named,)
