"""Strawberry's WebSocket protocol handlers, held to llamaql's rules.

Both protocols: one connection_init per socket (a second closes 4429), an identity
refusal closes 4403, a socket whose token expires is closed 4403 at that moment and
starts nothing after it (web/expiry.py), and refusals carry a contract code. The legacy
graphql-ws protocol also runs queries and mutations sent with `start`, as its clients
expect (Strawberry's handler only subscribes, so a query failed as INTERNAL).
"""

from __future__ import annotations

import asyncio

from graphql import GraphQLError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportInitMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    OperationMessage,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from llamaql.api.context import Context
from llamaql.web.expiry import CredentialExpiry

CLOSE_FORBIDDEN = 4403
CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_MANY_INITS = 4429


class LimitedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry enforces max_subscriptions_per_connection and a single
    connection_init already; this makes the operation-limit refusal say what the
    limit is and carry a contract code, and closes the socket with 4400 on a message of
    the wrong shape (Strawberry indexes into it unchecked: a JSON array or a string
    payload raised TypeError and dropped the socket, a non-string query was INTERNAL)."""

    _expiry: CredentialExpiry | None = None

    async def handle_message(self, message: Message) -> None:
        problem = malformed(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: TransportInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._expiry is None:
            self._expiry = CredentialExpiry(self.websocket.close)
            self._expiry.start(self.context.expires_at)

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await super().shutdown()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self._expiry is not None and self._expiry.expired():
            await self._expiry.close_expired()
            return
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = GraphQLError(
                f"too many active operations on this connection (limit {limit}): "
                "complete one or open another connection",
                extensions={"code": "BAD_USER_INPUT"},
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (subscriptions-transport-ws) under the same identity rules; a message
    of the wrong shape closes the socket with 4400, as on graphql-transport-ws."""

    connection_init_received = False
    _expiry: CredentialExpiry | None = None

    async def handle_message(self, message: OperationMessage) -> None:
        problem = malformed(message, operation="start", ended_by="stop")
        if problem is not None:
            await self.websocket.close(CLOSE_BAD_REQUEST, problem)
            return
        if message["type"] == "start" and self._expiry is not None and self._expiry.expired():
            await self._expiry.close_expired()
            return
        await super().handle_message(message)

    async def cleanup(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await super().cleanup()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_init_received:
            # A second init could name another user on an acknowledged socket.
            await self.websocket.close(CLOSE_TOO_MANY_INITS, "Too many initialisation requests")
            return
        self.connection_init_received = True
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            await self.websocket.close(CLOSE_BAD_REQUEST, "Invalid connection init payload")
            return
        self.context.connection_params = payload
        try:
            await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            await self.send_message({"type": "connection_error", "payload": exc.payload})
            await self.websocket.close(CLOSE_FORBIDDEN, "Forbidden")
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        self._expiry = CredentialExpiry(self.websocket.close)
        self._expiry.start(self.context.expires_at)
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """Any operation type: queries and mutations give one `data`, then `complete`."""
        try:
            source = await self.schema.stream(
                query=query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=self.root_value,
            )
            self.subscriptions[operation_id] = source
            async for result in source:
                if isinstance(result, PreExecutionError) and result.errors:
                    payload = result.errors[0].formatted
                    await self.send_message(
                        {"type": "error", "id": operation_id, "payload": payload}
                    )
                    return
                if isinstance(result, ExecutionResult):
                    await self.send_data_message(result, operation_id)
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            # A `stop`: the protocol still owes the client its `complete`.
            await self.send_message({"type": "complete", "id": operation_id})
            raise
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)


_OPTIONAL_PAYLOAD_FIELDS = {"variables": dict, "operationName": str, "extensions": dict}


def malformed(
    message: object, *, operation: str = "subscribe", ended_by: str = "complete"
) -> str | None:
    """What is wrong with a message's shape; None when nothing is. `operation` is the
    message type that starts an operation (graphql-ws: start), `ended_by` the one that
    stops it (graphql-ws: stop); both need a string id."""
    if not isinstance(message, dict):
        return "WebSocket message must be a JSON object"
    if not isinstance(message.get("type"), str):
        return "message type must be a string"
    if message["type"] == ended_by and not isinstance(message.get("id"), str):
        return f"{ended_by} id must be a string"
    if message["type"] != operation:
        return None
    if not isinstance(message.get("id"), str):
        return f"{operation} id must be a string"
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return f"{operation} payload must be an object with a string query"
    for name, kind in _OPTIONAL_PAYLOAD_FIELDS.items():
        value = payload.get(name)
        if value is not None and not isinstance(value, kind):
            return (
                f"{operation} payload {name} must be {'an object' if kind is dict else 'a string'}"
            )
    return None
