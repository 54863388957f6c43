"""Request bodies are capped before they are read (LLAMAQL_MAX_BODY_BYTES).

A declared Content-Length over the cap is refused at once, unread; a body without one
(chunked) is counted as it arrives and refused as soon as it passes the cap, so at most
the cap plus one chunk is ever held. WebSocket messages are capped by the server
(uvicorn's ws_max_size, set from the same value in cli.py).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamaql.web.http_errors import graphql_error_response


class BodyTooLargeError(Exception):
    """Raised from `receive` when a streamed body passes the cap."""


class BodyLimit:
    """ASGI middleware answering 413 (GraphQL-shaped JSON) to oversized bodies."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if response_started:  # an app that answers before reading: nothing to fix
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than {self.max_bytes} bytes (LLAMAQL_MAX_BODY_BYTES)"
        response = graphql_error_response(413, message)
        # The client may still be sending; uvicorn closes the connection after a
        # response to an unread body rather than read the rest.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
