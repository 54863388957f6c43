"""Benchmark 5, peer: llamaql against llama.cpp's own `llama-server` (built by
`make llama-server` from the same vendored llama.cpp), one after the other in one run.

A round at level N, for each side in turn (the order alternates from round to round):
a fresh server (`llama-server -np N`; `llamaql serve` with its default settings, model
titles on, except LLAMAQL_PARALLEL=N and the context per sequence), 2N chats opened
(distinct users; WebSockets past connection_ack, HTTP connections made), then two bursts
back to back on that server: N chats sent at once with "before" prompts, and as soon as
the last of them is done the measured burst: N other chats with the story prompts, which
differ from the first word on. The measured burst so meets whatever the first one left
behind (llamaql's model titles of the first N chats start as soon as the engine idles).
Right before each burst every chat's connection is checked (a WebSocket ping; a fresh
HTTP keep-alive connection with `GET /health`), so connection set-up is outside the
clock on both sides. Greedy on both sides (llama-server: top-k 1), the same system
prompt, at most `max_tokens` per reply; both stop at end-of-turn.

Per side and burst: total tok/s over the slowest stream, first token p50/p95,
per-stream delivery tok/s (tokens between the first and last streamed piece: llamaql
coalesces frames, so this is delivery, not decode) and the bench client's own CPU per
token (`time.process_time` of this process over the burst). A round is void when the
sides' token counts differ or a reply failed (bench.peer_rounds); a level reports the
median and the spread (min-max) of the rounds that are not void.

In the same run:
- the back-to-back burst rows: the levels in `burst_levels` against the issue's goals;
- turns: `others + 1` conversations take turns on servers with `turn_parallel` slots;
  the first-token time of the last turn over that of turn 2, over `rounds` rounds in
  alternating order;
- single-stream decode: the latest `stream` result (llamaql over llama-cpp-python in
  process, server/raw), which is what that claim measures.
Every server's log is kept under the results folder, its path in the result.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_RESULTS_DIR, Result, p50_p95, utc_stamp
from bench.concurrency import level_figures
from bench.llama_server import GREEDY, require_binary
from bench.peer_rounds import (
    LLAMA_SERVER,
    LLAMAQL,
    SIDES,
    before_prompt,
    order,
    over_rounds,
    ratio,
    story_prompt,
    turns_void_reason,
    void_reason,
)
from bench.peer_sides import Chat, Side, llama_server_side, llamaql_side
from bench.peer_table import summary, table_rows
from bench.turns import TURN_PROMPT, turn_row
from llamaql.config import Config

__all__ = ["SMOKE", "PeerParams", "run", "table_rows"]


@dataclass(frozen=True, slots=True)
class PeerParams:
    levels: tuple[int, ...] = (1, 2, 4, 8)
    burst_levels: tuple[int, ...] = (4, 8)  # the levels held to the burst goals
    max_tokens: int = 96
    slot_context: int = 2048  # per sequence on both sides, unless LLAMAQL_CONTEXT_SIZE is set
    rounds: int = 5  # per level and for the turns, in alternating order; medians reported
    turns: int = 10
    turn_max_tokens: int = 48
    others: int = 4  # conversations interleaved with each one (5 take turns)
    turn_parallel: int = 4  # LLAMAQL_PARALLEL's default: 5 conversations > 4 slots
    seed: int = 42
    results_dir: Path | None = None  # the latest stream_vs_raw.json; the servers' logs


SMOKE = PeerParams(
    levels=(1, 2),
    burst_levels=(2,),
    max_tokens=8,
    rounds=1,
    turns=2,
    turn_max_tokens=8,
    others=1,
)

OpenSide = Callable[[int, Path], AbstractAsyncContextManager[Side]]

# One side's figures in a round, by name, for the medians (paths into its burst).
SIDE_FIGURES: dict[str, tuple[str, ...]] = {
    "aggregate_tps": ("aggregate_tps",),
    "ttft_p50_ms": ("ttft_ms", "p50"),
    "ttft_p95_ms": ("ttft_ms", "p95"),
    "delivery_tps_p50": ("delivery_tps_per_stream", "p50"),
    "client_cpu_ms_per_token": ("client_cpu_ms_per_token",),
    "completion_tokens": ("completion_tokens",),
    "before_aggregate_tps": ("before", "aggregate_tps"),
}
TURN_FIGURES: dict[str, tuple[str, ...]] = {
    "last_over_turn2_ttft": ("last_over_turn2_ttft",),
    "client_cpu_ms_per_token": ("client_cpu_ms_per_token",),
}
RATIOS = ("tps_ratio", "ttft_p50_ratio", "ttft_p95_ratio")
BURST_GOALS = {"tps_ratio_at_least": 1.0, "ttft_p95_ratio_at_most": 1.2}


async def _timed_burst(
    chats: list[Chat], prompt: Callable[[int], str], max_tokens: int
) -> dict[str, Any]:
    """Every chat's connection checked, then the clock, then one message per chat at once."""
    await asyncio.gather(*(chat.ready() for chat in chats))
    cpu = time.process_time()
    started = time.perf_counter()
    timings = await asyncio.gather(
        *(chat.send(prompt(i), max_tokens) for i, chat in enumerate(chats))
    )
    cpu = time.process_time() - cpu
    figures = level_figures(len(chats), started, list(timings))
    delivery = [tps for t in timings if (tps := t.decode_tps()) is not None]
    usage = [t.usage or {} for t in timings]
    tokens = figures["completion_tokens"]
    return {
        **figures,
        "completion_tokens_each": [t.completion_tokens for t in timings],
        "prompt_tokens_each": [u.get("promptTokens") for u in usage],
        # llama-server may reuse another slot's prefix (the shared system prompt);
        # llamaql reuses KV only within one user's conversation (and the shared start).
        "cached_prompt_tokens_each": [u.get("cachedPromptTokens") for u in usage],
        "delivery_tps_per_stream": p50_p95(delivery),
        "client_cpu_ms_per_token": round(1000 * cpu / tokens, 4) if tokens else None,
    }


async def _side_round(
    open_side: OpenSide, streams: int, log_as: Path, max_tokens: int
) -> dict[str, Any]:
    """One side's round: a fresh server, a burst of other chats, then the measured burst."""
    async with open_side(streams, log_as) as side, AsyncExitStack() as stack:
        first = [await side.open_chat(stack) for _ in range(streams)]
        measured = [await side.open_chat(stack) for _ in range(streams)]
        before = await _timed_burst(first, before_prompt, max_tokens)
        figures = await _timed_burst(measured, story_prompt, max_tokens)
        described = side.describe()
    return {**figures, "before": before, "server": described}


def _compare(index: int, ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    return {
        "round": index,
        "first": order(index)[0],
        "void": void_reason(ours, peer),
        "tps_ratio": ratio(ours["aggregate_tps"], peer["aggregate_tps"]),
        "ttft_p50_ratio": ratio(ours["ttft_ms"]["p50"], peer["ttft_ms"]["p50"]),
        "ttft_p95_ratio": ratio(ours["ttft_ms"]["p95"], peer["ttft_ms"]["p95"]),
        LLAMAQL: ours,
        LLAMA_SERVER: peer,
    }


def _per_side(rounds: list[dict[str, Any]], figures: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """`over_rounds` of each side's figures, under the side's name."""
    out = {}
    for side in SIDES:
        paths = {name: (side, *path) for name, path in figures.items()}
        medians = over_rounds(rounds, paths)
        out[side] = {name: medians[name] for name in figures}
    return out


def level_summary(streams: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """A level's rounds as medians with their spread, void rounds left out (and counted)."""
    ratios = over_rounds(rounds, {name: (name,) for name in RATIOS})
    return {"streams": streams, **ratios, **_per_side(rounds, SIDE_FIGURES), "rounds": rounds}


async def _turns_side(open_side: OpenSide, params: PeerParams, log_as: Path) -> dict[str, Any]:
    async with open_side(params.turn_parallel, log_as) as side, AsyncExitStack() as stack:
        chats = [await side.open_chat(stack) for _ in range(params.others + 1)]
        rows: list[list[dict[str, Any]]] = [[] for _ in chats]
        cpu = 0.0
        for turn in range(1, params.turns + 1):
            for index, chat in enumerate(chats):
                text = TURN_PROMPT.format(turn=turn + 100 * index)
                await chat.ready()
                started = time.process_time()
                timing = await chat.send(text, params.turn_max_tokens)
                cpu += time.process_time() - started
                rows[index].append(turn_row(turn, timing))
        described = side.describe()
    ttft = [_median([c[t]["ttft_ms"] for c in rows]) for t in range(params.turns)]
    evaluated = [
        _median([c[t]["evaluated_prompt_tokens"] for c in rows]) for t in range(params.turns)
    ]
    tokens = sum(r["completion_tokens"] for c in rows for r in c)
    return {
        "conversations": len(rows),
        "ttft_ms_median_by_turn": ttft,
        "evaluated_prompt_tokens_median_by_turn": evaluated,
        "last_over_turn2_ttft": ratio(ttft[-1], ttft[1]) if len(ttft) >= 2 else None,
        "failed": sum(1 for c in rows for r in c if r["failed"] is not None),
        "client_cpu_ms_per_token": round(1000 * cpu / tokens, 4) if tokens else None,
        "server": described,
        "by_conversation": rows,
    }


def turns_summary(rounds: list[dict[str, Any]], turns: int) -> dict[str, Any]:
    """The turns rounds as medians with spread (void rounds left out), per side, with the
    first-token time of each turn as the median of the rounds' medians."""
    counted = [r for r in rounds if r["void"] is None]
    out: dict[str, Any] = {**over_rounds(rounds, {}), **_per_side(rounds, TURN_FIGURES)}
    for side in SIDES:
        out[side]["ttft_ms_by_turn_median_of_rounds"] = [
            _median([r[side]["ttft_ms_median_by_turn"][t] for r in counted]) for t in range(turns)
        ]
    return {**out, "rounds": rounds}


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def _stream_reference(results_dir: Path | None) -> dict[str, Any] | None:
    """The latest stream-vs-raw result (a separate run, named with its start time)."""
    path = results_dir / "stream_vs_raw.json" if results_dir else None
    if path is None or not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return {
        "file": str(path),
        "started_at": doc.get("started_at"),
        "decode_ratio_server_over_raw": doc["figures"]["decode_ratio_server_over_raw"]["median"],
    }


def bursts(levels: list[dict[str, Any]], burst_levels: tuple[int, ...]) -> list[dict[str, Any]]:
    """The back-to-back burst rows: the named levels' ratios against the goals."""
    rows = []
    for level in levels:
        if level["streams"] not in burst_levels:
            continue
        tps, ttft = level["tps_ratio"]["median"], level["ttft_p95_ratio"]["median"]
        rows.append(
            {
                "streams": level["streams"],
                "tps_ratio": level["tps_ratio"],
                "ttft_p95_ratio": level["ttft_p95_ratio"],
                "rounds_run": level["rounds_run"],
                "void_rounds": level["void_rounds"],
                "goals": BURST_GOALS,
                "tps_goal_met": None if tps is None else tps >= BURST_GOALS["tps_ratio_at_least"],
                "ttft_goal_met": None
                if ttft is None
                else ttft <= BURST_GOALS["ttft_p95_ratio_at_most"],
            }
        )
    return rows


async def run(settings: Config, params: PeerParams) -> Result:
    require_binary()  # fail before starting anything, with the command that builds it
    params = replace(params, slot_context=settings.engine.context_size or params.slot_context)
    logs = (params.results_dir or DEFAULT_RESULTS_DIR) / f"peer-logs-{utc_stamp()}"
    described = {**asdict(params), "results_dir": str(params.results_dir or "") or None}
    result = Result(
        "peer",
        params={**described, "prompt": story_prompt(0), "before_prompt": before_prompt(0)},
    )

    def peer(n: int, log_as: Path) -> AbstractAsyncContextManager[Side]:
        return llama_server_side(settings, n, params.seed, params.slot_context, log_as)

    def ours(n: int, log_as: Path) -> AbstractAsyncContextManager[Side]:
        return llamaql_side(settings, n, params.seed, params.slot_context, log_as)

    open_sides: dict[str, OpenSide] = {LLAMAQL: ours, LLAMA_SERVER: peer}
    counter = 0  # over the whole run, so the order alternates across levels too
    levels = []
    for streams in params.levels:
        rounds = []
        for k in range(1, params.rounds + 1):
            got = {}
            for side in order(counter):
                log_as = logs / f"N{streams}-r{k}-{side}.log"
                got[side] = await _side_round(open_sides[side], streams, log_as, params.max_tokens)
            rounds.append(_compare(counter, got[LLAMAQL], got[LLAMA_SERVER]))
            counter += 1
        levels.append(level_summary(streams, rounds))
    turn_rounds = []
    for k in range(1, params.rounds + 1):
        got = {}
        for side in order(counter):
            log_as = logs / f"turns-r{k}-{side}.log"
            got[side] = await _turns_side(open_sides[side], params, log_as)
        void = turns_void_reason(
            got[LLAMAQL]["by_conversation"], got[LLAMA_SERVER]["by_conversation"]
        )
        turn_rounds.append({"round": counter, "first": order(counter)[0], "void": void, **got})
        counter += 1
    result.figures = {
        "logs_dir": str(logs),
        "llama_server_sampling": GREEDY,
        "levels": levels,
        "bursts": bursts(levels, params.burst_levels),
        "single_stream": {"stream_bench": _stream_reference(params.results_dir)},
        "turns": turns_summary(turn_rounds, params.turns),
    }
    result.summary = summary(result.figures)
    result.details = "\n".join(["| benchmark | figure | value |", "|---|---|---|"])
    result.details += "\n" + "\n".join(table_rows(result.figures))
    return result
