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
extension does the same steps in the same order, and the schema runs them through
ApiRunner, which calls them without the context managers (api/schema.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextvars import Token
from functools import partial
from typing import Any

from graphql import ASTValidationRule, DocumentNode
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types.execution import ExecutionContext, StreamExecutionResult

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

    # The steps, each as it begins and as it ends (`failed`: the step raised). The hooks
    # below run them for Strawberry's own runner; ApiRunner calls them directly.

    def begin_operation(self) -> Token[uuid.UUID | None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.rules
        context.parse_options["max_tokens"] = self.max_tokens
        user = context.context
        return acting_for(user.user_id if isinstance(user, Context) else None)

    def end_operation(self, token: Token[uuid.UUID | None], failed: bool) -> None:
        stop_acting(token)
        if not failed:
            self.error_codes.operation_result(self.execution_context.result)

    def begin_parse(self) -> None:
        self._reused = self.cache.reuse(self.execution_context)

    def end_parse(self, failed: bool) -> None:
        if not failed:
            self.cache.keep_parsed(self.execution_context, self._reused)

    def begin_validate(self) -> None:
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

    def on_operation(self) -> Iterator[None]:
        token = self.begin_operation()
        try:
            yield
        except BaseException:
            self.end_operation(token, failed=True)
            raise
        self.end_operation(token, failed=False)

    def on_parse(self) -> Iterator[None]:
        self.begin_parse()
        try:
            yield
        except BaseException:
            self.end_parse(failed=True)
            raise
        self.end_parse(failed=False)

    def on_validate(self) -> Iterator[None]:
        self.begin_validate()
        yield

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        self.error_codes.stream_result(result)
        yield None


class ApiRunner(SchemaExtensionsRunner):
    """Strawberry's extension runner for an operation whose one extension is
    ApiOperation: each step calls its methods directly, where Strawberry's runner would
    inspect the hooks and build a context manager and an exit stack for each step of
    each operation. The steps begin and end where Strawberry's context managers would
    enter and leave, and never suppress an exception."""

    def __init__(self, execution_context: ExecutionContext, extension: ApiOperation) -> None:
        super().__init__(execution_context=execution_context, extensions=[extension])
        self.api = extension

    @classmethod
    def fits(cls, extensions: list[SchemaExtension]) -> ApiOperation | None:
        """The ApiOperation when it is the operation's only extension."""
        if len(extensions) == 1 and type(extensions[0]) is ApiOperation:
            return extensions[0]
        return None

    def operation(self) -> Any:
        api = self.api
        token: list[Token[uuid.UUID | None]] = []
        return _Step(
            lambda: token.append(api.begin_operation()),
            lambda failed: api.end_operation(token[0], failed),
        )

    def parsing(self) -> Any:
        return _Step(self.api.begin_parse, self.api.end_parse)

    def validation(self) -> Any:
        return _Step(self.api.begin_validate, _nothing)

    def executing(self) -> Any:
        return _Step(_nothing_yet, _nothing)

    def on_stream_result(self, result: StreamExecutionResult) -> Any:
        return _Step(partial(self.api.error_codes.stream_result, result), _nothing)


def _nothing(failed: bool) -> None:
    return None


def _nothing_yet() -> None:
    return None


class _Step:
    """One step's context manager, sync and async like Strawberry's."""

    __slots__ = ("_begin", "_end")

    def __init__(self, begin: Callable[[], object], end: Callable[[bool], object]) -> None:
        self._begin = begin
        self._end = end

    def __enter__(self) -> None:
        self._begin()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._end(kind is not None)

    async def __aenter__(self) -> None:
        self._begin()

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._end(kind is not None)
