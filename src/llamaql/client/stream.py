"""One GraphQL subscription over a WebSocket speaking graphql-transport-ws.

Each reply stream gets its own short-lived socket: nothing to keep alive between
prompts, and a server restart between two messages costs nothing. The identity goes in
the upgrade request's headers (see `api`); the `connection_init` payload stays empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from llamaql.client.api import ApiError, Identity, first_error
from llamaql.client.gqlws import GraphQLSocket, NotAcknowledgedError, ProtocolError

HANDSHAKE_TIMEOUT_S = 30.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
OPERATION_ID = "1"
# Close codes the server uses for refusals (web/ws_handlers.py).
_CLOSE_REASONS = {
    4400: ("BAD_USER_INPUT", "the server refused a malformed message"),
    4403: ("UNAUTHENTICATED", "the server refused this identity"),
    4429: ("BAD_USER_INPUT", "the server refused a second connection_init"),
}


def _closed_error(exc: ConnectionClosed) -> ApiError:
    code = exc.rcvd.code if exc.rcvd is not None else None
    if code in _CLOSE_REASONS:
        error, message = _CLOSE_REASONS[code]
        # The server's own reason when it gave one (4403: "the token expired: ...").
        return ApiError(error, (exc.rcvd.reason if exc.rcvd else "") or message)
    return ApiError("UNREACHABLE", f"the connection closed ({code or 'no close frame'})")


class Subscription:
    """`async with Subscription(...) as sub: async for event in sub.events(): ...`;
    `complete()` from another task ends it (the server then cancels the operation)."""

    def __init__(
        self, url: str, identity: Identity, document: str, variables: dict[str, Any], field: str
    ) -> None:
        self.url = url
        self.identity = identity
        self.document = document
        self.variables = variables
        self.field = field
        self._socket = GraphQLSocket(
            url,
            headers=identity.headers(),
            init_payload={},
            open_timeout=HANDSHAKE_TIMEOUT_S,
            max_size=MAX_MESSAGE_BYTES,
        )
        self._completed = False

    async def __aenter__(self) -> Self:
        try:
            await self._socket.open()
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ApiError(f"HTTP_{status}", f"{self.url} refused the WebSocket") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise ApiError("UNREACHABLE", f"{self.url}: {exc or type(exc).__name__}") from None
        except ConnectionClosed as exc:
            raise _closed_error(exc) from None
        except NotAcknowledgedError:
            raise ApiError(
                "UNREACHABLE", f"{self.url} did not acknowledge the connection"
            ) from None
        except ProtocolError:
            raise ApiError("INTERNAL", "the server sent a malformed message") from None
        await self._socket.subscribe(self.document, self.variables, op_id=OPERATION_ID)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._socket.close()

    async def complete(self) -> None:
        """Unsubscribe and close: the server ends the operation (a reply it follows goes
        on: only cancelGeneration stops one); `events()` then ends without a terminal
        event."""
        self._completed = True
        with contextlib.suppress(ConnectionClosed):
            await self._socket.complete(OPERATION_ID)
        await self.close()

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The subscription's results (`data[field]`) until the server completes it."""
        while True:
            try:
                message = await self._socket.receive()
            except ConnectionClosed as exc:
                if self._completed:
                    return
                raise _closed_error(exc) from None
            except ProtocolError:
                raise ApiError("INTERNAL", "the server sent a malformed message") from None
            kind = message.get("type")
            if kind == "complete":
                return
            if kind == "error":
                raise first_error({"errors": message.get("payload") or []})
            if kind == "next":
                payload = message.get("payload") or {}
                if payload.get("errors") or not payload.get("data"):
                    raise first_error(payload)
                event: dict[str, Any] = payload["data"][self.field]
                yield event
