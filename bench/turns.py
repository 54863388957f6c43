"""Benchmark 3, turns: one conversation of 10 turns, recording per turn the time to first
token and the prompt tokens evaluated (promptTokens - cachedPromptTokens, from the usage
the server returns); then the same with a second conversation interleaved between turns,
which shows whether earlier turns are evaluated again when the context was used by
someone else in between. Each pass gets a fresh server (an empty prompt cache).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.client import StreamTiming, WsSession, create_conversation
from bench.common import Result, ms
from bench.server import ServerProcess
from llamaql.config import Config

TURN_PROMPT = "Turn {turn}: tell me one short fact about the number {turn}."


@dataclass(frozen=True, slots=True)
class TurnsParams:
    turns: int = 10
    max_tokens: int = 48
    seed: int = 42


SMOKE = TurnsParams(turns=2, max_tokens=8)


def turn_row(turn: int, timing: StreamTiming) -> dict[str, Any]:
    usage = timing.usage or {}
    prompt = usage.get("promptTokens")
    cached = usage.get("cachedPromptTokens")
    return {
        "turn": turn,
        "ttft_ms": round(ms(timing.ttft_s), 2) if timing.ttft_s is not None else None,
        "prompt_tokens": prompt,
        "cached_prompt_tokens": cached,
        "evaluated_prompt_tokens": prompt - cached
        if prompt is not None and cached is not None
        else None,
        "completion_tokens": timing.completion_tokens,
        "failed": timing.failed_code,
    }


async def _conversation_turns(
    server: ServerProcess, http: httpx.AsyncClient, params: TurnsParams, *, interleave: bool
) -> list[dict[str, Any]]:
    options = {"temperature": 0.0, "seed": params.seed, "maxTokens": params.max_tokens}
    user = str(uuid.uuid4())
    rows: list[dict[str, Any]] = []
    async with WsSession(server.ws_url, user) as ws:
        measured = await create_conversation(http, server.http_url, user, "turns")
        other = await create_conversation(http, server.http_url, user, "interloper")
        for turn in range(1, params.turns + 1):
            if interleave:  # the context holds the other conversation when this turn comes
                await ws.send_message(other, TURN_PROMPT.format(turn=turn + 100), options)
            timing = await ws.send_message(measured, TURN_PROMPT.format(turn=turn), options)
            rows.append(turn_row(turn, timing))
    return rows


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    evaluated = [r["evaluated_prompt_tokens"] or 0 for r in rows]
    prompt = [r["prompt_tokens"] or 0 for r in rows]
    return {
        "evaluated_prompt_tokens": sum(evaluated),
        "prompt_tokens": sum(prompt),
        "last_turn_ttft_ms": rows[-1]["ttft_ms"] if rows else None,
        "last_turn_evaluated": evaluated[-1] if evaluated else None,
    }


async def run(settings: Config, params: TurnsParams) -> Result:
    result = Result("turns", params={**asdict(params), "prompt": TURN_PROMPT})
    passes: list[list[dict[str, Any]]] = []
    for interleave in (False, True):
        # A server per pass: both passes send the same messages, so the second would find
        # the first one's history in the server's prompt cache.
        async with ServerProcess(settings) as server, httpx.AsyncClient(timeout=30) as http:
            passes.append(await _conversation_turns(server, http, params, interleave=interleave))
    alone, interleaved = passes
    result.figures = {
        "alone": {"turns": alone, "totals": _totals(alone)},
        "interleaved": {"turns": interleaved, "totals": _totals(interleaved)},
    }
    a, b = _totals(alone), _totals(interleaved)
    result.summary = (
        f"turns: {params.turns} turns alone evaluated {a['evaluated_prompt_tokens']} of "
        f"{a['prompt_tokens']} prompt tokens (last turn {a['last_turn_evaluated']}, TTFT "
        f"{a['last_turn_ttft_ms']} ms); interleaved {b['evaluated_prompt_tokens']} of "
        f"{b['prompt_tokens']} (last turn {b['last_turn_evaluated']}, TTFT "
        f"{b['last_turn_ttft_ms']} ms)"
    )
    return result
