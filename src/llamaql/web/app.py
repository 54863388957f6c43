"""create_app(config) -> Starlette: /graphql (HTTP + WebSocket), /health (readiness, the
database included), /health/live (liveness), /metrics (unless LLAMAQL_METRICS=false), the
chat page (/ and /static/), GraphiQL's assets (when vendored), lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from llamaql.api.schema import build_schema
from llamaql.config import Config
from llamaql.container import Runtime, build_container
from llamaql.persistence.migrations import migrate
from llamaql.services.metrics import Metrics
from llamaql.web.body_limit import BodyLimit
from llamaql.web.chat_page import chat_page_routes
from llamaql.web.graphiql import LocalGraphiQL
from llamaql.web.view import LlamaqlGraphQL

logger = logging.getLogger(__name__)


async def health(request: Request) -> Response:
    """Readiness: 200 once started and while the database answers (a `SELECT 1`, at
    most one at a time, bounded and reused for a second); else 503 with the reason."""
    if not getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "starting"}, status_code=503)
    runtime: Runtime = request.app.state.container.resolve(Runtime)
    problem = await runtime.db_probe.problem() if runtime.db_probe is not None else None
    if problem is not None:
        return JSONResponse({"status": "unavailable", "database": problem}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def live(request: Request) -> Response:
    """Liveness: the process is up and serving HTTP (nothing else is checked)."""
    return JSONResponse({"status": "alive"})


async def metrics(request: Request) -> Response:
    """Prometheus metrics: operational figures only (no user, conversation or text)."""
    container = request.app.state.container
    if container is None:
        return PlainTextResponse("starting\n", status_code=503)
    body, content_type = container.resolve(Metrics).exposition(request.headers.get("accept", ""))
    return Response(body, headers={"Content-Type": content_type})


def create_app(config: Config, **overrides: Any) -> Starlette:
    """The ASGI app; `overrides` go to build_container (engine=, uow_factory=, ...)."""
    graphql = LlamaqlGraphQL(
        build_schema(config.api),
        max_subscriptions_per_connection=config.api.max_subscriptions_per_connection,
        # Pages on other origins may not open a socket (cross-site WebSocket hijacking);
        # the server's own origin and clients that send no Origin are always allowed.
        allowed_origins=config.auth.allowed_origins,
    )
    graphql.local_ide = LocalGraphiQL.load(graphql.graphql_ide_html)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ready = False
        container = build_container(config, **overrides)
        runtime: Runtime = container.resolve(Runtime)
        try:
            if runtime.db_engine is not None:
                await migrate(config.database.database_url)
            if runtime.replicas is not None:
                await runtime.replicas.start()
            if runtime.chat is not None:
                await runtime.chat.recover_interrupted()
            if runtime.heartbeat is not None:
                runtime.heartbeat.start()
            if runtime.events is not None:
                runtime.events.start()
            if runtime.engine is not None:
                await runtime.engine.start()
                runtime.metrics.engine_up = True
            app.state.container = container
            app.state.ready = True
            logger.info("llamaql ready")
            yield
        finally:
            app.state.ready = False
            # Replies are cancelled and saved before the engine and database go away.
            if runtime.chat is not None:
                await runtime.chat.shutdown()
            if runtime.pulls is not None:
                await runtime.pulls.aclose()
            # Beating until every reply is saved: a reply saved late is still ours.
            if runtime.heartbeat is not None:
                await runtime.heartbeat.stop()
            if runtime.events is not None:
                await runtime.events.stop()
            if runtime.replicas is not None:
                await runtime.replicas.stop()
            if runtime.engine is not None:
                runtime.metrics.engine_up = False
                await runtime.engine.stop()
            if runtime.db_engine is not None:
                await runtime.db_engine.dispose()
            logger.info("llamaql stopped")

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/health/live", live),
            *([Route("/metrics", metrics)] if config.server.metrics else []),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *([graphql.local_ide.mount] if graphql.local_ide else []),
            *chat_page_routes(),
        ],
        middleware=[Middleware(BodyLimit, max_bytes=config.server.max_body_bytes)],
        lifespan=lifespan,
    )
    app.state.ready = False
    app.state.container = None
    return app
