"""ApiRunner: the API's one extension runs its steps without Strawberry's per-hook
context managers, and answers as Strawberry's own runner does."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import patch

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import ExtensionContextManagerBase

from llamaql.api.schema import build_schema
from llamaql.config import ApiConfig

INVALID = "{ conversations { nope } }"
COSTLY = "{ conversations(first: 30000) { totalCount } }"
SYNTAX = "{ conversations { "


class _Other(SchemaExtension):
    """Any second extension: the schema falls back to Strawberry's runner."""


def _answers(schema: Any) -> list[Any]:
    async def run() -> list[Any]:
        results = [await schema.execute(query) for query in (INVALID, COSTLY, SYNTAX)]
        return [
            [(error.message, error.extensions) for error in result.errors or []]
            for result in results
        ]

    return asyncio.run(run())


def test_steps_run_without_strawberrys_context_managers() -> None:
    schema = build_schema(ApiConfig())
    with patch.object(
        ExtensionContextManagerBase, "__init__", side_effect=AssertionError("built")
    ) as built:
        answers = _answers(schema)
    assert built.call_count == 0
    codes = [[extensions["code"] for _, extensions in errors] for errors in answers]
    assert codes == [["BAD_USER_INPUT"]] * 3
    assert "30000 list items" in answers[1][0][0]


def test_strawberrys_runner_answers_alike() -> None:
    schema = build_schema(ApiConfig())
    lean = _answers(schema)
    schema.extensions = (*schema.extensions, _Other)
    with patch.object(
        ExtensionContextManagerBase,
        "__init__",
        autospec=True,
        side_effect=ExtensionContextManagerBase.__init__,
    ) as built:
        assert _answers(schema) == lean
    assert built.call_count > 0
