"""Error mapping at the GraphQL edge: every error leaves with `extensions.code`.

- DomainError (services) and EngineError (engine): their code and message.
- Errors of the document itself (syntax, validation, limits, bad variables):
  BAD_USER_INPUT with GraphQL's own message, so clients keep one set of codes.
- Anything else: logged with traceback and a request id, and sent as INTERNAL with a
  generic message and `extensions.requestId`, so an operator can find the log line.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry import Schema
from strawberry.types.execution import ExecutionContext, StreamExecutionResult
from strawberry.types.execution import ExecutionResult as StrawberryExecutionResult

from llamaql.ports.engine import EngineError
from llamaql.ports.errors import DomainError

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Internal server error"
ENGINE_MESSAGE = "The model failed to process the request"
# Engine failures whose message is meant for the client; others stay in the log.
_ENGINE_CODES_WITH_MESSAGE = frozenset({"QUEUE_FULL", "CONTEXT_OVERFLOW", "BAD_USER_INPUT"})


def error_code_of(exc: BaseException) -> tuple[str, str, bool] | None:
    """(code, client message, retryable) for a known failure, else None.

    Reusable by the subscription path to turn an exception into MessageFailed.
    """
    if isinstance(exc, DomainError):
        return exc.code, exc.message, exc.retryable
    if isinstance(exc, EngineError):
        code = getattr(exc, "code", "ENGINE_ERROR")
        message = str(exc) if code in _ENGINE_CODES_WITH_MESSAGE else ENGINE_MESSAGE
        return code, message, code == "QUEUE_FULL"
    return None


class ErrorCodes:
    """Gives every error of one operation a contract code and hides internals; made per
    operation by the API's schema extension (api/operation.py), which hands it the
    operation's result, or each streamed result."""

    def __init__(self) -> None:
        self._request_id: str | None = None
        self.streamed = False  # results were coded one by one as they streamed

    @property
    def request_id(self) -> str:
        """This operation's id in the log; drawn when an unexpected error first needs it
        (uuid4 reads the OS's random source: not worth doing for every read)."""
        if self._request_id is None:
            self._request_id = uuid.uuid4().hex
        return self._request_id

    def operation_result(self, result: object) -> None:
        """Codes the errors of an operation's result (unless they streamed)."""
        if self.streamed:
            return
        if isinstance(result, GraphQLExecutionResult | StrawberryExecutionResult):
            self._process_result(result)

    def stream_result(self, result: StreamExecutionResult) -> None:
        """Codes the errors of one streamed result."""
        self.streamed = True
        self._process_result(result)

    def _process_result(self, result: Any) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._coded(error) for error in errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        if error.extensions and "code" in error.extensions:
            return error  # already processed (stream results pass through twice)
        original = error.original_error
        known = error_code_of(original) if original is not None else None
        if known is not None:
            code, message, retryable = known
            extensions: dict[str, Any] = {"code": code}
            if retryable:
                extensions["retryable"] = True
            return _copy(error, message, extensions, original)
        if original is None or isinstance(original, GraphQLError):
            return _copy(error, error.message, {"code": "BAD_USER_INPUT"}, original)
        logger.error(
            "request %s: unexpected error at %s",
            self.request_id,
            ".".join(str(part) for part in error.path or ()) or "<operation>",
            exc_info=(type(original), original, original.__traceback__),
        )
        extensions = {"code": "INTERNAL", "requestId": self.request_id}
        return _copy(error, INTERNAL_MESSAGE, extensions, None)


def _copy(
    error: GraphQLError,
    message: str,
    extensions: dict[str, Any],
    original: Exception | None,
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions={**(error.extensions or {}), **extensions},
    )


class LlamaqlSchema(Schema):
    """Strawberry's Schema minus its default error logging: ErrorCodes logs what an
    operator needs (unexpected errors, with a request id); client mistakes are not
    server errors and would only flood the log."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            logger.debug("graphql error: %s", error.message)
