"""Parsed and validated documents, kept by their text: a client sending the same query
again (every page of the chat, every loader-backed read, every sendMessage) is not
parsed and validated again.

Parsing the API benchmark's reads took 0.35-0.45 ms of their 5-6 ms each. Strawberry's
ParserCache parses inside its hook, which broke syntax errors on the subscription path;
here Strawberry parses as before (its errors, and the token limit, untouched) and only a
document that parsed is kept. Validation errors are kept with the document and reported
every time it comes back. Only documents, their validation errors and what is derived
from the document alone (`memo`: the query cost's plan) are kept: nothing of any user's
data, context or variables (those are checked per operation, api/operation.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError
from strawberry.schema.schema import validate_document
from strawberry.types.execution import ExecutionContext

_Rules = tuple[type[ASTValidationRule], ...]


class _Kept:
    __slots__ = ("document", "errors", "memo")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.errors: dict[_Rules, list[GraphQLError]] = {}  # by rule set
        self.memo: dict[Any, Any] = {}


class DocumentCache:
    """The most recently used `maxsize` documents by text, each with its validation
    errors by rule set. One per schema (its parse options and rules are fixed)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, _Kept] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def document(self, text: str) -> DocumentNode | None:
        entry = self._entries.get(text)
        if entry is None:
            return None
        self._entries.move_to_end(text)
        return entry.document

    def keep(self, text: str, document: DocumentNode) -> None:
        if text in self._entries:
            return
        self._entries[text] = _Kept(document)
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def _kept(self, text: str, document: DocumentNode) -> _Kept | None:
        entry = self._entries.get(text)
        return entry if entry is not None and entry.document is document else None

    def errors(
        self, text: str, document: DocumentNode, schema: Any, rules: _Rules
    ) -> list[GraphQLError]:
        """The validation errors of `document` (parsed from `text`), validated once per
        rule set while the document is kept."""
        entry = self._kept(text, document)
        if entry is None:
            return validate_document(schema, document, rules)
        found = entry.errors.get(rules)
        if found is None:
            found = entry.errors[rules] = validate_document(schema, document, rules)
        return list(found)

    def memo(self, text: str, document: DocumentNode) -> dict[Any, Any] | None:
        """A place for what is derived from `document` alone, kept (and dropped) with it;
        None when the document is not the one kept for `text`."""
        entry = self._kept(text, document)
        return None if entry is None else entry.memo

    def reuse(self, context: ExecutionContext) -> DocumentNode | None:
        """Before parsing: the kept document of the operation's text, set on `context`
        (Strawberry skips parsing a set document); None when there is none."""
        text = context.query
        kept = self.document(text) if text and context.graphql_document is None else None
        if kept is not None:
            context.graphql_document = kept
        return kept

    def keep_parsed(self, context: ExecutionContext, reused: DocumentNode | None) -> None:
        """After parsing: keeps the document that was parsed (not one `reuse` set)."""
        text = context.query
        if reused is None and text and context.graphql_document is not None:
            self.keep(text, context.graphql_document)

    def validate(self, context: ExecutionContext) -> None:
        """Sets the operation's validation errors, from the cache when kept (Strawberry
        then skips its own validation: they are set)."""
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            schema, rules = context.schema._schema, context.validation_rules
            context.pre_execution_errors = self.errors(context.query or "", document, schema, rules)
