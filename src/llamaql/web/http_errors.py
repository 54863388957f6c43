"""HTTP refusals in GraphQL's response shape, so clients parse one format."""

from __future__ import annotations

from starlette.responses import JSONResponse


def graphql_error_response(
    status_code: int, message: str, code: str = "BAD_USER_INPUT"
) -> JSONResponse:
    """`{"errors": [{"message", "extensions": {"code"}}]}` with an HTTP status."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status_code)
