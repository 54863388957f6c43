"""Every text input is storable text (services/text.py), checked before execution.

String literals in the document are checked by a validation rule (cached with the
document); variables by a schema extension that adds its error to the validation errors,
so the operation is refused as BAD_USER_INPUT before any resolver runs: nothing is
written, whichever field would have stored the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import SchemaExtension

from llamaql.services.text import unstorable_character


class StorableStringLiterals(ValidationRule):
    """Refuses string literals holding a NUL or a lone surrogate."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        problem = unstorable_character(node.value)
        if problem is not None:
            self.report_error(GraphQLError(f"a string argument {problem}", node))


def _variable_problem(value: object, path: str) -> str | None:
    if isinstance(value, str):
        problem = unstorable_character(value)
        return f"Variable '${path}' {problem}" if problem else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and (problem := unstorable_character(key)):
            return f"Variable '${path}' has a key that {problem}"
        problem = _variable_problem(item, f"{path}.{key}" if path else str(key))
        if problem is not None:
            return problem
    return None


class StorableVariables(SchemaExtension):
    """Refuses variables holding a NUL or a lone surrogate, anywhere inside them.

    Listed after CachedDocuments: that extension sets the validation errors as it
    enters, and Strawberry reads them before any extension leaves the step."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        problem = _variable_problem(context.variables or {}, "")
        if problem is not None:
            context.pre_execution_errors = [
                *(context.pre_execution_errors or []),
                GraphQLError(problem),
            ]
        yield
