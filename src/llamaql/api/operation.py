"""ApiOperation: what the API does around every operation, as one schema extension.

In order, for each operation:

- its user is the acting user for the whole operation (its database work counts toward
  that user's share, llamaql.persistence.db_share), before any resolver runs;
- the API's validation rules (depth, aliases, storable string literals, introspection
  when off) join Strawberry's, and the parser stops at the token limit (what Strawberry's
  AddValidationRules and MaxTokensLimiter do);
- a document sent before is neither parsed nor validated again (api/document_cache.py);
- variables holding unstorable text are refused (api/text_input.py), then an operation
  costing more than the limit, or whose variables do not coerce (api/query_cost.py),
  before anything runs; both after validation: an invalid document is refused by its
  validation errors alone;
- every error of its result leaves with a contract code (api/errors.py).

These were seven extensions. Strawberry makes, for every operation, an instance of each
extension and, for each of its hooks, a context manager (inspect, contextlib and an exit
stack for each): about 250 calls per read for steps that are a few lines each. One
extension does the same steps in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ASTValidationRule, DocumentNode
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from llamaql.api.context import Context
from llamaql.api.document_cache import DocumentCache
from llamaql.api.errors import ErrorCodes
from llamaql.api.query_cost import QueryCostLimit
from llamaql.api.text_input import variables_refusal
from llamaql.ports.acting_user import acting_for, stop_acting


class ApiOperation(SchemaExtension):
    """The API's per-operation steps (see the module docstring); one per operation."""

    def __init__(
        self,
        *,
        rules: tuple[type[ASTValidationRule], ...],
        max_tokens: int,
        cache: DocumentCache,
        cost_limit: QueryCostLimit,
    ) -> None:
        self.rules = rules
        self.max_tokens = max_tokens
        self.cache = cache
        self.cost_limit = cost_limit
        self.error_codes = ErrorCodes()
        self._reused: DocumentNode | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.rules
        context.parse_options["max_tokens"] = self.max_tokens
        user = context.context
        token = acting_for(user.user_id if isinstance(user, Context) else None)
        try:
            yield
        finally:
            stop_acting(token)
        self.error_codes.operation_result(context.result)

    def on_parse(self) -> Iterator[None]:
        self._reused = self.cache.reuse(self.execution_context)
        yield
        self.cache.keep_parsed(self.execution_context, self._reused)

    def on_validate(self) -> Iterator[None]:
        # Set as the step begins: Strawberry reads the errors before any hook leaves it.
        context = self.execution_context
        self.cache.validate(context)
        refusal = variables_refusal(context.variables or {})
        if refusal is not None:
            context.pre_execution_errors = [*(context.pre_execution_errors or []), refusal]
        document = context.graphql_document
        memo = None
        if document is not None and context.query:
            memo = self.cache.memo(context.query, document)
        refusals = self.cost_limit.refusals(context, memo)
        if refusals:
            context.pre_execution_errors = [*(context.pre_execution_errors or []), *refusals]
        yield

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        self.error_codes.stream_result(result)
        yield None
