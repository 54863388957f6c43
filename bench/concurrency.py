"""Benchmark 2, concurrency: N conversations (1, 2, 4, 8), each on its own WebSocket,
send at once through the server. Reports aggregate generated tokens/s, per-stream time
to first token and inter-token gap (p50, p95), and refused requests by error code.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.client import StreamTiming, WsSession, create_conversation
from bench.common import Result, ms, p50_p95
from bench.server import ServerProcess
from bench.stream import STREAM_PROMPT
from llamaql.config import Config


@dataclass(frozen=True, slots=True)
class ConcurrencyParams:
    levels: tuple[int, ...] = (1, 2, 4, 8)
    max_tokens: int = 96
    seed: int = 42


SMOKE = ConcurrencyParams(levels=(1, 2), max_tokens=8)


async def _level(
    server: ServerProcess, http: httpx.AsyncClient, streams: int, params: ConcurrencyParams
) -> dict[str, Any]:
    options = {"temperature": 0.0, "seed": params.seed, "maxTokens": params.max_tokens}
    async with AsyncExitStack() as stack:
        sessions: list[tuple[WsSession, str]] = []
        for index in range(streams):
            user = str(uuid.uuid4())
            session = await stack.enter_async_context(WsSession(server.ws_url, user))
            conversation = await create_conversation(http, server.http_url, user, f"c{index}")
            sessions.append((session, conversation))
        started = time.perf_counter()
        timings = await asyncio.gather(
            *(
                session.send_message(conversation, STREAM_PROMPT, options)
                for session, conversation in sessions
            )
        )
    return level_figures(streams, started, list(timings))


def level_figures(streams: int, started: float, timings: list[StreamTiming]) -> dict[str, Any]:
    """One burst of `streams` replies sent at `started`: tokens/s over the slowest, TTFT and
    gaps (also the peer benchmark's figures, for both of its servers)."""
    done = [t for t in timings if t.failed_code is None]
    ended = max((t.finished_at or started for t in timings), default=started)
    tokens = sum(t.completion_tokens for t in done)
    elapsed = ended - started
    ttfts = [ms(t.ttft_s) for t in done if t.ttft_s is not None]
    gaps = [ms(gap) for t in done for gap in t.gaps_s()]
    refused = Counter(t.failed_code for t in timings if t.failed_code is not None)
    return {
        "streams": streams,
        "completed": len(done),
        "refused": sum(refused.values()),
        "refused_by_code": dict(refused),
        "completion_tokens": tokens,
        "wall_s": round(elapsed, 3),
        "aggregate_tps": round(tokens / elapsed, 2) if elapsed > 0 else None,
        "ttft_ms": p50_p95(ttfts),
        "inter_token_gap_ms": p50_p95(gaps),
    }


async def run(settings: Config, params: ConcurrencyParams) -> Result:
    result = Result("concurrency", params={**asdict(params), "prompt": STREAM_PROMPT})
    levels: list[dict[str, Any]] = []
    async with ServerProcess(settings) as server, httpx.AsyncClient(timeout=30) as http:
        for streams in params.levels:
            levels.append(await _level(server, http, streams, params))
    result.figures = {"levels": levels}
    result.summary = "concurrency: " + "; ".join(
        f"N={lv['streams']} {lv['aggregate_tps']} tok/s, TTFT p50/p95 "
        f"{lv['ttft_ms']['p50']}/{lv['ttft_ms']['p95']} ms, gap p95 "
        f"{lv['inter_token_gap_ms']['p95']} ms, refused {lv['refused']}"
        for lv in levels
    )
    return result
