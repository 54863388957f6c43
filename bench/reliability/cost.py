"""Cost: the query cost limit's property (cost_documents.py) against `llamaql serve` with
LLAMAQL_MAX_QUERY_COST at its smallest, 100, and rows enough to exceed it many times
over: no served query returns more list items than the limit (or than its own cost),
and every refusal is BAD_USER_INPUT."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bench.reliability import cost_documents
from bench.reliability.common import Figure, Server, Size
from bench.reliability.wire import create_conversations
from llamaql.api.schema import build_schema
from llamaql.config import Config
from llamaql.persistence.db import create_db_engine, create_session_factory
from llamaql.persistence.repositories.uow import make_uow_factory


@dataclass(frozen=True)
class CostParams:
    documents: int


PARAMS: dict[Size, CostParams] = {
    "small": CostParams(documents=60),
    "medium": CostParams(documents=300),
    "full": CostParams(documents=1000),
}


async def _seed(server: Server, user: str) -> list[str]:
    """The conversations over the API, their messages straight into the server's SQLite
    file through the repositories (sendMessage would take minutes for as many)."""
    async with httpx.AsyncClient(timeout=60) as client:
        ids = await create_conversations(
            client, server.http_url, user, cost_documents.CONVERSATIONS
        )
    engine = create_db_engine(f"sqlite+aiosqlite:///{server.database}")
    try:
        await cost_documents.seed(make_uow_factory(create_session_factory(engine)), user, ids)
    finally:
        await engine.dispose()
    return ids


def _run(server: Server, settings: Config, user: str, ids: list[str], count: int) -> Any:
    with httpx.Client(timeout=60) as client:

        def post(document: str, variables: dict[str, Any]) -> dict[str, Any]:
            response = client.post(
                server.http_url,
                json={"query": document, "variables": variables},
                headers={"X-User-ID": user},
            )
            body: dict[str, Any] = response.json()
            return body

        schema = build_schema(settings.api)._schema
        return cost_documents.run_property(schema, post, ids, count)


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    limit = cost_documents.LIMIT
    figure = Figure("cost", {**p.__dict__, "limit": limit})
    env = {"LLAMAQL_AUTO_TITLE": "false", "LLAMAQL_MAX_QUERY_COST": str(limit)}
    user = str(uuid.uuid4())
    async with Server(settings, env) as server:
        ids = await _seed(server, user)
        result = await asyncio.to_thread(_run, server, settings, user, ids, p.documents)
        async with httpx.AsyncClient(timeout=30) as client:
            alive = (await client.post(server.http_url, json={"query": "{__typename}"})).status_code
        tracebacks = server.log_text().count("Traceback")
    figure.values = {
        "rows": {
            "conversations": cost_documents.CONVERSATIONS,
            "messages_each": cost_documents.MESSAGES_EACH,
        },
        "outcomes": dict(result.outcomes),
        "most_items_served": result.most_items,
        "violations": len(result.violations),
        "log_tracebacks": tracebacks,
    }
    if result.violations:
        figure.values["first_violations"] = result.violations[:3]
    figure.check(
        "served queries over the limit or their cost, refusals not BAD_USER_INPUT",
        len(result.violations),
        not result.violations,
        "0",
    )
    tested = result.outcomes["served"] > 0 and result.outcomes["refused: cost"] > 0
    figure.check(
        "documents served / refused by the limit",
        f"{result.outcomes['served']} / {result.outcomes['refused: cost']}",
        tested,
        "both > 0",
    )
    figure.check("server still answers afterwards", alive, alive == 200, "HTTP 200")
    figure.check("tracebacks in the server log", tracebacks, tracebacks == 0, "0")
    return figure
