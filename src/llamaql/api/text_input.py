"""Every text input is storable text (services/text.py), checked before execution.

String literals in the document are checked by a validation rule (cached with the
document); variables by the API's schema extension (api/operation.py), which adds their
error to the validation errors, so the operation is refused as BAD_USER_INPUT before any
resolver runs: nothing is written, whichever field would have stored the text.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule

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


def variables_refusal(variables: object) -> GraphQLError | None:
    """The error refusing variables that hold a NUL or a lone surrogate anywhere inside
    them; None when they are storable. Added to the validation errors by the API's schema
    extension (api/operation.py)."""
    problem = _variable_problem(variables, "")
    return None if problem is None else GraphQLError(problem)
