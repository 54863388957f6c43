"""Parsed and validated documents, kept by their text: a client sending the same query
again (every page of the chat, every loader-backed read, every sendMessage) is not
parsed and validated again.

Parsing the API benchmark's reads took 0.35-0.45 ms of their 5-6 ms each. Strawberry's
ParserCache parses inside its hook, which broke syntax errors on the subscription path;
here Strawberry parses as before (its errors, and the token limit, untouched) and only a
document that parsed is kept. Validation errors are kept with the document and reported
every time it comes back. Only documents and their validation errors are kept: nothing
of any user's data, context or variables (those are checked per operation by
StorableVariables and QueryCostLimit).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

_Rules = tuple[type[ASTValidationRule], ...]


class DocumentCache:
    """The most recently used `maxsize` documents by text, each with its validation
    errors by rule set. One per schema (its parse options and rules are fixed)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, tuple[DocumentNode, dict[_Rules, list[GraphQLError]]]]
        self._entries = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def document(self, text: str) -> DocumentNode | None:
        entry = self._entries.get(text)
        if entry is None:
            return None
        self._entries.move_to_end(text)
        return entry[0]

    def keep(self, text: str, document: DocumentNode) -> None:
        if text in self._entries:
            return
        self._entries[text] = (document, {})
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def errors(
        self, text: str, document: DocumentNode, schema: Any, rules: _Rules
    ) -> list[GraphQLError]:
        """The validation errors of `document` (parsed from `text`), validated once per
        rule set while the document is kept."""
        entry = self._entries.get(text)
        if entry is None or entry[0] is not document:
            return validate_document(schema, document, rules)
        found = entry[1].get(rules)
        if found is None:
            found = entry[1][rules] = validate_document(schema, document, rules)
        return list(found)


class CachedDocuments(SchemaExtension):
    """Reuses a kept document and its validation errors (see the module docstring).

    Listed where Strawberry's ValidationCache was: StorableVariables and QueryCostLimit
    come after it, as they add to the errors this sets when the validation step begins."""

    def __init__(self, *, cache: DocumentCache) -> None:
        self.cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        kept = self.cache.document(text) if text and context.graphql_document is None else None
        if kept is not None:
            context.graphql_document = kept  # Strawberry skips parsing a set document
        yield
        if kept is None and text and context.graphql_document is not None:
            self.cache.keep(text, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            schema, rules = context.schema._schema, context.validation_rules
            context.pre_execution_errors = self.cache.errors(
                context.query or "", document, schema, rules
            )
        yield
