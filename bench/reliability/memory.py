"""Memory: the server's resident memory after many generations against after a few.
The prompt cache may grow between the two by up to its budget (LLAMAQL_PROMPT_CACHE_MB,
set small here so that it cannot hide a leak); any growth beyond that budget must stay
under 5 % of the early figure."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx

from bench.reliability.common import Figure, Server, Size
from bench.reliability.wire import Mux, create_conversations
from llamaql.config import Config

GROWTH_BOUND = 0.05


@dataclass(frozen=True)
class MemoryParams:
    early: int  # generations before the first reading
    total: int  # generations before the second
    workers: int = 4  # connections sending at once (one user each)
    max_tokens: int = 8
    prompt_cache_mb: int = 16


PARAMS: dict[Size, MemoryParams] = {
    "small": MemoryParams(early=2, total=8, workers=2),
    "medium": MemoryParams(early=20, total=150),
    "full": MemoryParams(early=20, total=500),
}


async def _generate(server: Server, count: int, p: MemoryParams, failures: list[str]) -> None:
    """`count` replies, each in a new conversation, spread over the workers."""

    async def worker(n: int) -> None:
        user = str(uuid.uuid4())
        async with httpx.AsyncClient(timeout=60) as client:
            conversations = await create_conversations(client, server.http_url, user, n)
        async with Mux(server.ws_url, user) as mux:
            for i, cid in enumerate(conversations):
                text = f"Write a short sentence about item {i} of {n}."
                timing = await mux.send_message(cid, text, {"maxTokens": p.max_tokens})
                if timing.failed_code is not None:
                    failures.append(timing.failed_code)

    shares = [count // p.workers + (1 if i < count % p.workers else 0) for i in range(p.workers)]
    await asyncio.gather(*(worker(n) for n in shares if n))


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    figure = Figure("memory", dict(p.__dict__))
    env = {"LLAMAQL_PROMPT_CACHE_MB": str(p.prompt_cache_mb), "LLAMAQL_AUTO_TITLE": "false"}
    failures: list[str] = []
    async with Server(settings, env) as server:
        await _generate(server, p.early, p, failures)
        early = server.rss_mb()
        await _generate(server, p.total - p.early, p, failures)
        late = server.rss_mb()
    beyond_cache = max(0.0, late - early - p.prompt_cache_mb)
    growth = beyond_cache / early
    figure.values = {
        "rss_mb_after_early": round(early, 1),
        "rss_mb_after_total": round(late, 1),
        "prompt_cache_budget_mb": p.prompt_cache_mb,
        "growth_beyond_cache_mb": round(beyond_cache, 1),
        "growth_beyond_cache_pct": round(100 * growth, 2),
        "failed_generations": len(failures),
    }
    figure.check(
        "RSS growth beyond the cache budget",
        f"{100 * growth:.2f} %",
        growth < GROWTH_BOUND,
        f"< {100 * GROWTH_BOUND:.0f} %",
    )
    figure.check("every generation completed", len(failures), not failures, "0 failed")
    return figure
