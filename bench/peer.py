"""Benchmark 5, peer: llamaql against llama.cpp's own `llama-server` (built by
`make llama-server` from the same vendored llama.cpp), one after the other in one run.

For each N in the levels (1, 2, 4, 8): a fresh `llama-server -np N` and a fresh
`llamaql serve` with LLAMAQL_PARALLEL=N each get one warm-up reply, then N chats (distinct
users, distinct story prompts, the same on both sides) sent at once, greedy, at most
`max_tokens` each. Both sides stop at the end-of-turn token, so the prompts ask for long
stories and the figures report every reply's token count. Per side: total tok/s over the
slowest stream, first token p50/p95; then llamaql/llama-server ratios. Each level runs
`rounds` such pairs of bursts, alternating which side goes first, and keeps the round
with the median tok/s ratio (every round's ratios are listed beside it).

In the same run, the issue's two other targets:
- single-stream decode: llamaql's decode tok/s over llama-server's at N=1 (llama.cpp with
  no Python in the way), beside the latest `stream` result (llamaql over llama-cpp-python
  in-process) when one is in the results folder;
- turns: `others + 1` conversations take turns (each turn of each conversation between two
  turns of any one), on servers with `turn_parallel` slots; the first-token time of the
  last turn over that of turn 2 (medians over the conversations).
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

from bench.common import Result, p50_p95
from bench.concurrency import level_figures
from bench.llama_server import require_binary
from bench.peer_sides import Side, llama_server_side, llamaql_side
from bench.stream import STREAM_PROMPT
from bench.turns import TURN_PROMPT, turn_row
from llamaql.settings import Settings

STORY_SUBJECTS = (
    "a dragon who learns to bake bread",  # STREAM_PROMPT's
    "a lighthouse keeper who befriends a whale",
    "a robot who wants to paint the sea",
    "a fox who opens a library in the forest",
    "a sailor lost on a sea of stars",
    "a girl who can talk to trees",
    "an old clock that runs backwards",
    "a cat who becomes the mayor of a village",
)
WARMUP_PROMPT = "Say hello."
WARMUP_TOKENS = 4


@dataclass(frozen=True, slots=True)
class PeerParams:
    levels: tuple[int, ...] = (1, 2, 4, 8)
    max_tokens: int = 96
    slot_context: int = 2048  # per sequence on both sides, unless LLAMAQL_CONTEXT_SIZE is set
    rounds: int = 3  # bursts per side and level, in alternating order; the median is kept
    turns: int = 10
    turn_max_tokens: int = 48
    others: int = 4  # conversations interleaved with each one (5 take turns)
    turn_parallel: int = 4  # LLAMAQL_PARALLEL's default: 5 conversations > 4 slots
    seed: int = 42
    results_dir: Path | None = None  # where the latest stream_vs_raw.json is looked for


SMOKE = PeerParams(levels=(1, 2), max_tokens=8, rounds=1, turns=2, turn_max_tokens=8, others=1)

OpenSide = Callable[[int], AbstractAsyncContextManager[Side]]


def story_prompt(index: int) -> str:
    prompt = f"Write a very long story about {STORY_SUBJECTS[index % len(STORY_SUBJECTS)]}."
    return prompt if index < len(STORY_SUBJECTS) else f"{prompt} Part {index // 8 + 1}."


async def _burst(open_side: OpenSide, streams: int, params: PeerParams) -> dict[str, Any]:
    async with open_side(streams) as side, AsyncExitStack() as stack:
        warm = await side.open_chat(stack)
        await warm.send(WARMUP_PROMPT, WARMUP_TOKENS)
        chats = [await side.open_chat(stack) for _ in range(streams)]
        started = time.perf_counter()
        timings = await asyncio.gather(
            *(chat.send(story_prompt(i), params.max_tokens) for i, chat in enumerate(chats))
        )
        described = side.describe()
    figures = level_figures(streams, started, list(timings))
    decode = [tps for t in timings if (tps := t.decode_tps()) is not None]
    usage = [t.usage or {} for t in timings]
    return {
        **figures,
        "completion_tokens_each": [t.completion_tokens for t in timings],
        "prompt_tokens_each": [u.get("promptTokens") for u in usage],
        # llama-server may reuse another slot's prefix (the shared system prompt);
        # llamaql reuses KV only within one user's conversation.
        "cached_prompt_tokens_each": [u.get("cachedPromptTokens") for u in usage],
        "decode_tps_per_stream": p50_p95(decode),
        "server": described,
    }


async def _turns(open_side: OpenSide, params: PeerParams) -> dict[str, Any]:
    async with open_side(params.turn_parallel) as side, AsyncExitStack() as stack:
        chats = [await side.open_chat(stack) for _ in range(params.others + 1)]
        rows: list[list[dict[str, Any]]] = [[] for _ in chats]
        for turn in range(1, params.turns + 1):
            for index, chat in enumerate(chats):
                text = TURN_PROMPT.format(turn=turn + 100 * index)
                rows[index].append(turn_row(turn, await chat.send(text, params.turn_max_tokens)))
    ttft = [_median([c[t]["ttft_ms"] for c in rows]) for t in range(params.turns)]
    evaluated = [
        _median([c[t]["evaluated_prompt_tokens"] for c in rows]) for t in range(params.turns)
    ]
    return {
        "conversations": len(rows),
        "ttft_ms_median_by_turn": ttft,
        "evaluated_prompt_tokens_median_by_turn": evaluated,
        "last_over_turn2_ttft": _ratio(ttft[-1], ttft[1]) if len(ttft) >= 2 else None,
        "failed": sum(1 for c in rows for r in c if r["failed"] is not None),
        "by_conversation": rows,
    }


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median tok/s ratio (the lower middle one of an even count),
    with every round's ratios beside it: one burst on shared cores moves by more than
    the gaps the ratios measure."""
    ranked = sorted(rounds, key=lambda r: r["tps_ratio"] or 0.0)
    middle = ranked[(len(ranked) - 1) // 2]
    every = [
        {
            "tps_ratio": r["tps_ratio"],
            "ttft_p95_ratio": r["ttft_p95_ratio"],
            "aggregate_tps": [r["llamaql"]["aggregate_tps"], r["llama_server"]["aggregate_tps"]],
        }
        for r in rounds
    ]
    return {**middle, "rounds": every}


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if not top or not bottom else round(top / bottom, 3)


def _compare(peer: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    return {
        "streams": ours["streams"],
        "tps_ratio": _ratio(ours["aggregate_tps"], peer["aggregate_tps"]),
        "ttft_p50_ratio": _ratio(ours["ttft_ms"]["p50"], peer["ttft_ms"]["p50"]),
        "ttft_p95_ratio": _ratio(ours["ttft_ms"]["p95"], peer["ttft_ms"]["p95"]),
        "token_counts_match": ours["completion_tokens_each"] == peer["completion_tokens_each"],
        "llama_server": peer,
        "llamaql": ours,
    }


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


async def run(settings: Settings, params: PeerParams) -> Result:
    require_binary()  # fail before starting anything, with the command that builds it
    params = replace(params, slot_context=settings.context_size or params.slot_context)
    described = {**asdict(params), "results_dir": str(params.results_dir or "") or None}
    result = Result("peer", params={**described, "prompt": STREAM_PROMPT})

    def peer(n: int) -> AbstractAsyncContextManager[Side]:
        return llama_server_side(settings, n, params.seed, params.slot_context)

    def ours(n: int) -> AbstractAsyncContextManager[Side]:
        return llamaql_side(settings, n, params.seed, params.slot_context)

    levels = []
    turn = 0
    for streams in params.levels:
        rounds = []
        for _ in range(params.rounds):
            # Alternate which server goes first, so drift on the machine falls on both.
            if turn % 2 == 0:
                a, b = await _burst(peer, streams, params), await _burst(ours, streams, params)
            else:
                b, a = await _burst(ours, streams, params), await _burst(peer, streams, params)
            turn += 1
            rounds.append(_compare(a, b))
        levels.append(_median_round(rounds))
    turns = {"llama_server": await _turns(peer, params), "llamaql": await _turns(ours, params)}
    result.figures = {
        "levels": levels,
        "single_stream": _single_stream(levels, params.results_dir),
        "turns": turns,
    }
    result.summary = _summary(result.figures)
    result.details = "\n".join(["| benchmark | figure | value |", "|---|---|---|"])
    result.details += "\n" + "\n".join(table_rows(result.figures))
    return result


def _single_stream(levels: list[dict[str, Any]], results_dir: Path | None) -> dict[str, Any]:
    one = next((lv for lv in levels if lv["streams"] == 1), None)
    peer = one["llama_server"]["decode_tps_per_stream"]["p50"] if one else None
    ours = one["llamaql"]["decode_tps_per_stream"]["p50"] if one else None
    return {
        "llama_server_decode_tps": peer,
        "llamaql_decode_tps": ours,
        "decode_ratio": _ratio(ours, peer),
        "stream_bench": _stream_reference(results_dir),
    }


def _summary(figures: dict[str, Any]) -> str:
    levels = "; ".join(
        f"N={lv['streams']} {lv['llamaql']['aggregate_tps']} vs "
        f"{lv['llama_server']['aggregate_tps']} tok/s ({lv['tps_ratio']}x{_spread(lv)}), "
        "TTFT p95 "
        f"{lv['llamaql']['ttft_ms']['p95']} vs {lv['llama_server']['ttft_ms']['p95']} ms "
        f"({lv['ttft_p95_ratio']}x)"
        for lv in figures["levels"]
    )
    single, turns = figures["single_stream"], figures["turns"]
    ratio = single["decode_ratio"]
    decode = f"{ratio}x" if ratio is not None else "not measured (N=1 not in the levels)"
    return (
        f"peer (llamaql vs llama-server): {levels}; single-stream decode "
        f"{decode}; last turn/turn 2 TTFT llamaql "
        f"{turns['llamaql']['last_over_turn2_ttft']}x, llama-server "
        f"{turns['llama_server']['last_over_turn2_ttft']}x"
    )


def _spread(level: dict[str, Any]) -> str:
    """`, rounds 0.93/1.01/1.04` when the level ran more than one round."""
    ratios = sorted(r["tps_ratio"] or 0.0 for r in level.get("rounds", ()))
    return f", rounds {'/'.join(f'{r:.2f}' for r in ratios)}" if len(ratios) > 1 else ""


def table_rows(figures: dict[str, Any]) -> list[str]:
    """The Markdown rows bench/results/README.md keeps (also printed after the summary)."""

    def ttft(side: dict[str, Any]) -> str:
        return f"{side['ttft_ms']['p50']:.0f}/{side['ttft_ms']['p95']:.0f}"

    rows = [
        f"| peer N={lv['streams']} | total tok/s llamaql vs llama-server (ratio); TTFT "
        f"p50/p95 ms llamaql vs llama-server (p95 ratio); tokens llamaql/llama-server | "
        f"{lv['llamaql']['aggregate_tps']} vs {lv['llama_server']['aggregate_tps']} "
        f"({lv['tps_ratio']}x{_spread(lv)}); {ttft(lv['llamaql'])} vs {ttft(lv['llama_server'])} "
        f"({lv['ttft_p95_ratio']}x); {lv['llamaql']['completion_tokens']}/"
        f"{lv['llama_server']['completion_tokens']} |"
        for lv in figures["levels"]
    ]
    single, stream = figures["single_stream"], figures["single_stream"]["stream_bench"]
    rows.append(
        f"| peer single stream | decode tok/s at N=1, llamaql vs llama-server (ratio); "
        f"stream bench server/raw | {single['llamaql_decode_tps']} vs "
        f"{single['llama_server_decode_tps']} ({single['decode_ratio']}x); "
        f"{stream['decode_ratio_server_over_raw'] if stream else 'not run'} |"
    )
    for name, side in (("llamaql", "llamaql"), ("llama-server", "llama_server")):
        turns = figures["turns"][side]
        by_turn = "/".join(f"{v:.0f}" for v in turns["ttft_ms_median_by_turn"] if v is not None)
        rows.append(
            f"| peer turns, {name} | last turn/turn 2 TTFT; TTFT ms by turn (median of "
            f"{turns['conversations']} interleaved conversations) | "
            f"{turns['last_over_turn2_ttft']}x; {by_turn} |"
        )
    return rows
