"""create_app(settings) -> Starlette: /graphql (HTTP + WebSocket), /health, the chat page
(/ and /static/), GraphiQL's assets (when vendored), lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import punq
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types.unset import UNSET, UnsetType

from llamaql.chat_page import chat_page_routes
from llamaql.container import Runtime, build_container
from llamaql.context import USER_HEADER, Context, find_user_value, parse_user_id
from llamaql.graphiql import LocalGraphiQL
from llamaql.migrations import migrate
from llamaql.schema import build_schema
from llamaql.services.errors import UnauthenticatedError
from llamaql.settings import Settings

logger = logging.getLogger(__name__)

# UNSET is typed Any; returning it from on_ws_connect means "plain connection_ack".
NO_ACK_PAYLOAD: UnsetType = UNSET


class LimitedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry enforces max_subscriptions_per_connection already; this only makes
    the refusal say what the limit is and carry a contract code."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
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


class LlamaqlGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context and WebSocket identity check."""

    graphql_transport_ws_handler_class = LimitedTransportWSHandler
    local_ide: LocalGraphiQL | None = None

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL on the vendored assets when `make install` fetched them."""
        return self.local_ide.html if self.local_ide else super().graphql_ide_html

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        container: punq.Container | None = getattr(request.app.state, "container", None)
        if container is None:
            # Servers only pass requests after lifespan start-up; this is a misuse
            # such as a TestClient used without `with`.
            raise RuntimeError("llamaql app used before its lifespan started")
        return Context.for_user_value(container, request.headers.get(USER_HEADER))

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Identity from connection_init's payload, else the upgrade request's header."""
        value = find_user_value(context.connection_params)
        if value is None and context.user_id is not None:
            return NO_ACK_PAYLOAD
        try:
            context.user_id = parse_user_id(value)
        except UnauthenticatedError as exc:
            logger.info("websocket refused: %s", exc.message)
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": exc.message}
            ) from None
        context.identity_error = None
        return NO_ACK_PAYLOAD


async def health(request: Request) -> Response:
    if getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "starting"}, status_code=503)


def create_app(settings: Settings, **overrides: Any) -> Starlette:
    """The ASGI app; `overrides` go to build_container (engine=, uow_factory=, ...)."""
    graphql = LlamaqlGraphQL(
        build_schema(settings),
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )
    graphql.local_ide = LocalGraphiQL.load(graphql.graphql_ide_html)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ready = False
        container = build_container(settings, **overrides)
        runtime: Runtime = container.resolve(Runtime)
        try:
            if runtime.db_engine is not None:
                await migrate(settings.database_url)
            if runtime.chat is not None:
                await runtime.chat.recover_interrupted()
            if runtime.engine is not None:
                await runtime.engine.start()
            app.state.container = container
            app.state.ready = True
            logger.info("llamaql ready")
            yield
        finally:
            app.state.ready = False
            # Replies are cancelled and saved before the engine and database go away.
            if runtime.chat is not None:
                await runtime.chat.shutdown()
            if runtime.engine is not None:
                await runtime.engine.stop()
            if runtime.db_engine is not None:
                await runtime.db_engine.dispose()
            logger.info("llamaql stopped")

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *([graphql.local_ide.mount] if graphql.local_ide else []),
            *chat_page_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.ready = False
    app.state.container = None
    return app
