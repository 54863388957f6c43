"""Strawberry's ASGI view with llamaql's context, identity rules and HTTP refusals."""

from __future__ import annotations

import json
import logging
from typing import Any

import punq
from cross_web import HTTPException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType

from llamaql.api.context import Context
from llamaql.auth import Authenticator, connection_expiry, connection_user
from llamaql.ports.errors import UnauthenticatedError
from llamaql.web.graphiql import LocalGraphiQL
from llamaql.web.http_errors import graphql_error_response
from llamaql.web.ws_handlers import LegacyWSHandler, LimitedTransportWSHandler

logger = logging.getLogger(__name__)

# UNSET is typed Any; returning it from on_ws_connect means "plain connection_ack".
NO_ACK_PAYLOAD: UnsetType = UNSET


class LlamaqlGraphQL(GraphQL[Context, None]):
    """/graphql over HTTP and both WebSocket protocols."""

    graphql_transport_ws_handler_class = LimitedTransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    local_ide: LocalGraphiQL | None = None
    _authenticator_of: tuple[punq.Container, Authenticator] | None = None

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL on the vendored assets when `make install` fetched them."""
        return self.local_ide.html if self.local_ide else super().graphql_ide_html

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as exc:
            # Strawberry answers these in plain text; clients expect GraphQL's shape.
            response = graphql_error_response(exc.status_code, exc.reason)
        await response(scope, receive, send)

    def parse_json(self, data: str | bytes) -> Any:
        """A POST body (or GET variables): JSON, and an object or a batch list. Strawberry
        would call `.get` on a string or number and fail with a 500."""
        value = super().parse_json(data)
        if not isinstance(value, dict | list):
            raise HTTPException(
                400, f'expected a JSON object like {{"query": "..."}}, got {json.dumps(value):.40}'
            )
        return value

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        container: punq.Container | None = getattr(request.app.state, "container", None)
        if container is None:
            # Servers only pass requests after lifespan start-up; this is a misuse
            # such as a TestClient used without `with`.
            raise RuntimeError("llamaql app used before its lifespan started")
        authenticator = self._authenticator(container)
        return Context.for_claim(container, await authenticator.from_headers(request.headers))

    def _authenticator(self, container: punq.Container) -> Authenticator:
        # Resolved once per container (one per app's lifespan), not on every request.
        if self._authenticator_of is None or self._authenticator_of[0] is not container:
            self._authenticator_of = (container, container.resolve(Authenticator))
        return self._authenticator_of[1]

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """The upgrade request's identity wins; the connection_init payload may name the
        user only when the upgrade request named none (browsers cannot set headers)."""
        authenticator: Authenticator = context.container.resolve(Authenticator)
        payload = await authenticator.from_params(context.connection_params)
        try:
            context.user_id = connection_user(context.request_claim, payload)
        except UnauthenticatedError as exc:
            logger.info("websocket refused: %s", exc.message)
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": exc.message}
            ) from None
        context.identity_error = None
        # The socket is closed when this passes (web/expiry.py, armed by the handlers).
        context.expires_at = connection_expiry(context.request_claim, payload)
        return NO_ACK_PAYLOAD
