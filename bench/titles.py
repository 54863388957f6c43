"""Benchmark `titles`: does background work stand in front of replies?

The case users meet with the default settings: a burst of N new chats, then, as soon as
those replies are done, a second burst of N other new chats. With `LLAMAQL_AUTO_TITLE`
on (the default) the first burst's conversations are untitled, so the server asks the
model for N titles just as the second burst arrives. The same two bursts run against a
fresh server with titles on and a fresh server with titles off, alternating which goes
first, `rounds` times per level; the figures are the second burst's total tok/s and first
token p50/p95, as medians over the rounds with their spread, and the on/off ratios
(goal: first token p95 within 10 % of titles off).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.client import WsSession, graphql_http
from bench.common import Result, spread
from bench.concurrency import level_figures
from bench.server import ServerProcess
from llamaql.config import Config

CREATE_UNTITLED = "mutation { createConversation { id } }"
# Different from the first word on, burst to burst and chat to chat.
FIRST_BURST = (
    "Describe a lighthouse keeper's evening in detail.",
    "Explain how bread rises, step by step.",
    "List ten facts about octopuses, with a sentence each.",
    "Tell a long story about a fox who learns to sail.",
    "Summarise the history of the bicycle at length.",
    "Give detailed advice for planting a vegetable garden.",
    "Narrate a long journey across a desert by camel.",
    "Compare tea and coffee in a long essay.",
)
SECOND_BURST = (
    "Write a long story about a robot who paints.",
    "Imagine a city under the sea and describe it at length.",
    "Recount a mountain climb in great detail.",
    "Portray a busy market morning, sound by sound.",
    "Invent a long fairy tale about a clockmaker.",
    "Chronicle a storm at sea from a sailor's view.",
    "Picture a library at midnight and describe everything.",
    "Create a long adventure about two friends and a map.",
)


@dataclass(frozen=True, slots=True)
class TitlesParams:
    levels: tuple[int, ...] = (4, 8)
    rounds: int = 3
    max_tokens: int = 96
    context_per_sequence: int = 2048


SMOKE = TitlesParams(levels=(2,), rounds=1, max_tokens=8)


async def _burst(
    server: ServerProcess, http: httpx.AsyncClient, prompts: tuple[str, ...], max_tokens: int
) -> dict[str, Any]:
    """N new untitled chats of N users, sockets open before the clock, sent at once."""
    options = {"temperature": 0.0, "seed": 42, "maxTokens": max_tokens}
    async with AsyncExitStack() as stack:
        chats: list[tuple[WsSession, str, str]] = []
        for prompt in prompts:
            user = str(uuid.uuid4())
            session = await stack.enter_async_context(WsSession(server.ws_url, user))
            data = await graphql_http(http, server.http_url, user, CREATE_UNTITLED)
            chats.append((session, str(data["createConversation"]["id"]), prompt))
        started = time.perf_counter()
        timings = await asyncio.gather(
            *(session.send_message(chat, prompt, options) for session, chat, prompt in chats)
        )
    return level_figures(len(prompts), started, list(timings))


async def _round(settings: Config, params: TitlesParams, n: int, titles: bool) -> dict[str, Any]:
    env = {
        "LLAMAQL_PARALLEL": str(n),
        "LLAMAQL_CONTEXT_SIZE": str(params.context_per_sequence),
        "LLAMAQL_AUTO_TITLE": "true" if titles else "false",
    }
    async with (
        ServerProcess(settings, extra_env=env) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        await _burst(server, http, FIRST_BURST[:n], params.max_tokens)
        return await _burst(server, http, SECOND_BURST[:n], params.max_tokens)


def _figure(rounds: list[dict[str, Any]], pick: str) -> dict[str, float | int | None]:
    """Median and spread over the rounds of one burst figure ("tps", "p50" or "p95")."""
    values = [r["aggregate_tps"] if pick == "tps" else r["ttft_ms"][pick] for r in rounds]
    return spread([v for v in values if v is not None])


def _ratio(a: float | int | None, b: float | int | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


async def _level(settings: Config, params: TitlesParams, n: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for index in range(params.rounds):
        order = ("on", "off") if index % 2 == 0 else ("off", "on")
        for side in order:
            runs[side].append(await _round(settings, params, n, titles=side == "on"))
    sides = {
        side: {
            "tps": _figure(rounds, "tps"),
            "ttft_p50_ms": _figure(rounds, "p50"),
            "ttft_p95_ms": _figure(rounds, "p95"),
            "refused": sum(r["refused"] for r in rounds),
            "rounds": rounds,
        }
        for side, rounds in runs.items()
    }
    on, off = sides["on"], sides["off"]
    return {
        "streams": n,
        "titles_on": on,
        "titles_off": off,
        "tps_on_over_off": _ratio(on["tps"]["median"], off["tps"]["median"]),
        "ttft_p95_on_over_off": _ratio(on["ttft_p95_ms"]["median"], off["ttft_p95_ms"]["median"]),
    }


def _cell(figure: dict[str, Any]) -> str:
    return f"{figure['median']} ({figure['min']}-{figure['max']})"


async def run(settings: Config, params: TitlesParams) -> Result:
    result = Result("titles", params=asdict(params))
    levels = [await _level(settings, params, n) for n in params.levels]
    result.figures = {"levels": levels}
    result.summary = "titles (second burst, on vs off, median (min-max)): " + "; ".join(
        f"N={lv['streams']} tok/s {_cell(lv['titles_on']['tps'])} vs "
        f"{_cell(lv['titles_off']['tps'])} ({lv['tps_on_over_off']}x), TTFT p95 ms "
        f"{_cell(lv['titles_on']['ttft_p95_ms'])} vs {_cell(lv['titles_off']['ttft_p95_ms'])} "
        f"({lv['ttft_p95_on_over_off']}x)"
        for lv in levels
    )
    return result
