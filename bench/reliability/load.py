"""Load: many sendMessage subscriptions at once, over few connections, against a small
queue. Each is served (MessageCompleted) or refused with QUEUE_FULL, nothing else; and
afterwards the database holds, for every conversation that stored anything, exactly one
user message and one finished reply (none left GENERATING)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx

from bench.client import StreamTiming
from bench.reliability.common import Figure, Server, Size, audit_replies
from bench.reliability.wire import Mux, create_conversations
from llamaql.config import Config


@dataclass(frozen=True)
class LoadParams:
    subscriptions: int
    connections: int
    queue_size: int
    max_tokens: int = 8


PARAMS: dict[Size, LoadParams] = {
    "small": LoadParams(subscriptions=12, connections=3, queue_size=2),
    "medium": LoadParams(subscriptions=60, connections=6, queue_size=10),
    "full": LoadParams(subscriptions=200, connections=20, queue_size=10),
}


async def _connection(
    server: Server, user: str, conversations: list[str], max_tokens: int
) -> list[StreamTiming]:
    async with Mux(server.ws_url, user) as mux:
        sends = [
            mux.send_message(cid, f"Say one word about the number {i}.", {"maxTokens": max_tokens})
            for i, cid in enumerate(conversations)
        ]
        return list(await asyncio.gather(*sends))


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    per_connection = -(-p.subscriptions // p.connections)
    figure = Figure("load", {**p.__dict__, "parallel": settings.engine.parallel})
    env = {
        "LLAMAQL_QUEUE_SIZE": str(p.queue_size),
        "LLAMAQL_MAX_SUBSCRIPTIONS_PER_CONNECTION": str(per_connection),
    }
    async with Server(settings, env) as server:
        users = [str(uuid.uuid4()) for _ in range(p.connections)]
        plan: list[list[str]] = []
        async with httpx.AsyncClient(timeout=60) as client:
            left = p.subscriptions
            for user in users:
                count = min(per_connection, left)
                left -= count
                plan.append(await create_conversations(client, server.http_url, user, count))
        results = await asyncio.gather(
            *(_connection(server, u, c, p.max_tokens) for u, c in zip(users, plan, strict=True))
        )
        timings = [t for per in results for t in per]
        audit = audit_replies(server.database)
    outcomes = Counter(
        "served"
        if t.failed_code is None and t.finish_reason is not None
        else (t.failed_code or "no terminal event")
        for t in timings
    )
    served, refused = outcomes.pop("served", 0), outcomes.pop("QUEUE_FULL", 0)
    figure.values = {
        "served": served,
        "refused_queue_full": refused,
        "other_outcomes": dict(outcomes),
        "stored_conversations": audit.conversations,
        "stored_user_messages": audit.user_messages,
        "stored_replies": audit.replies,
        "reply_statuses": audit.statuses,
    }
    figure.check("every subscription served or QUEUE_FULL", dict(outcomes), not outcomes, "{}")
    figure.check("some were served", served, served >= 1, ">= 1")
    figure.check(
        "over capacity some were refused",
        refused,
        refused >= 1,
        f">= 1 (parallel {settings.engine.parallel} + queue {p.queue_size} < {p.subscriptions})",
        enforced=settings.engine.parallel + p.queue_size < p.subscriptions,
    )
    figure.check(
        "each stored exchange: one user message, one reply",
        audit.bad_conversations,
        audit.bad_conversations == 0,
        "0 conversations otherwise",
    )
    figure.check("no reply left GENERATING", audit.generating, audit.generating == 0, "0")
    figure.check(
        "stored exchanges == served",
        audit.user_messages,
        audit.user_messages == served,
        f"== {served} (refusals write nothing)",
    )
    return figure
