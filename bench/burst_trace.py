"""Where a back-to-back burst's time goes on llamaql's side (`python -m bench.burst_trace
[--streams 8] [--rounds 2] [--peer]`): the peer benchmark's rounds (bench.peer: a fresh
server, a burst of N new chats, then the measured burst of N others), with `llamaql
serve` run by bench/burst_trace_serve.py, which writes a timeline. Per measured burst:
its tok/s and first token p50/p95 (the client's, as bench.peer counts them); when the
last request reached the engine and when the first step began (ms after the burst
began); the first step's llama_decode ms; over the other steps, llama_decode's median
and mean ms and the median ms of the scheduler's Python around it; the event loop's
and every thread's CPU seconds (/proc); and how long after the last first token was
sampled the first frames left. `--peer` runs llama-server's rounds too (alternating),
with its own per-token eval ms from its log. Prints one JSON document. A finder of
costs: the timeline's wrappers cost microseconds per call, so quote bench.peer's ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import peer
from bench.common import start_cli
from bench.peer_sides import Chat, llama_server_side, llamaql_side
from llamaql.config import Config

LAUNCHER = Path(__file__).with_name("burst_trace_serve.py")
_EVAL = re.compile(r"^\s*.*\beval time =\s+[\d.]+ ms /\s+\d+ tokens \(\s*([\d.]+) ms per token")


def _lines(path: Path) -> list[tuple[float, str, str, dict[str, str]]]:
    out = []
    for line in path.read_text().splitlines():
        stamp, thread, name, *fields = line.split()
        values = dict(field.split("=", 1) for field in fields if "=" in field)
        out.append((float(stamp), thread, name, values))
    return out


def _server_threads() -> dict[int, float]:
    """CPU seconds of each thread of the traced server (found by its command line)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[int, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if LAUNCHER.name not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            continue
    return seconds


def _ms(since: float, at: float) -> float:
    return round(1000 * (at - since), 1)


def burst_figures(trace: Path, began: float, ended: float, cpu: dict[int, float]) -> dict[str, Any]:
    """The timeline of one burst (`began`..`ended`, perf_counter seconds)."""
    events = _lines(trace)
    inside = [e for e in events if began <= e[0] <= ended]
    steps = [e for e in inside if e[2] == "decode"]
    puts = [e[0] for e in inside if e[2] == "put" and e[3].get("bg") == "False"]
    firsts = [e[0] for e in inside if e[2] == "first_sample"]
    main = {int(e[3]["tid"]) for e in events if e[2] == "thread" and e[3]["name"] == "MainThread"}
    figures: dict[str, Any] = {
        "last_request_at_engine_ms": _ms(began, max(puts)) if puts else None,
        "loop_cpu_s": round(sum(s for tid, s in cpu.items() if tid in main), 3),
        "server_cpu_s": round(sum(cpu.values()), 3),
    }
    if steps:
        first = steps[0]
        llama = [float(e[3]["llama_ms"]) for e in steps[1:]]
        python = [float(e[3]["py_ms"]) for e in steps[1:]]
        first_ms = float(first[3]["llama_ms"]) + float(first[3]["py_ms"])
        figures |= {
            "first_step_began_ms": _ms(began, first[0] - first_ms / 1000),
            "first_step_llama_ms": float(first[3]["llama_ms"]),
            "first_step_tokens": int(first[3]["tokens"]),
            "steps": len(steps),
            "step_llama_ms_median": round(statistics.median(llama), 2) if llama else None,
            "step_llama_ms_mean": round(statistics.mean(llama), 2) if llama else None,
            "step_python_ms_median": round(statistics.median(python), 2) if python else None,
        }
    if firsts:
        last = max(firsts)
        sends = [e[0] for e in events if e[2] == "ws_send" and last <= e[0] <= last + 0.2]
        figures["first_frames_after_last_first_token_ms"] = [_ms(last, t) for t in sends[:8]]
    return figures


async def _round(open_side: Callable[..., Any], streams: int, log_as: Path) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    timed = peer._timed_burst
    traced = open_side is not llama_server_side

    async def watched(chats: list[Chat], prompt: Any, max_tokens: int) -> dict[str, Any]:
        cpu = _server_threads() if traced else {}
        began = time.perf_counter()
        figures = await timed(chats, prompt, max_tokens)
        ended = time.perf_counter()
        after = _server_threads() if traced else {}
        measured.update(began=began, ended=ended, cpu={t: after[t] - cpu.get(t, 0) for t in after})
        return figures

    peer._timed_burst = watched
    try:
        result = await peer._side_round(open_side, streams, log_as, 96)
    finally:
        peer._timed_burst = timed
    return {**result, **measured}


async def run(
    settings: Config, streams: int, rounds: int, with_peer: bool, folder: Path
) -> dict[str, Any]:
    trace = folder / "trace.log"
    os.environ["BURST_TRACE_FILE"] = str(trace)
    command = [sys.executable, str(LAUNCHER), "serve"]
    out: list[dict[str, Any]] = []
    for k in range(rounds):
        sides = ["llamaql", "llama-server"] if with_peer else ["llamaql"]
        for side in sides if k % 2 == 0 else sides[::-1]:
            log_as = folder / f"{side}-{k}.log"
            if side == "llamaql":

                def ours(n: int, log: Path) -> Any:
                    return llamaql_side(settings, n, 42, 2048, log, command=command)

                got = await _round(ours, streams, log_as)
                figures = burst_figures(trace, got["began"], got["ended"], got["cpu"])
            else:

                def theirs(n: int, log: Path) -> Any:
                    return llama_server_side(settings, n, 42, 2048, log)

                got = await _round(theirs, streams, log_as)
                evals = [
                    float(m[1])
                    for line in log_as.read_text().splitlines()
                    if (m := _EVAL.match(line)) and "prompt" not in line
                ]
                figures = {"eval_ms_per_token_median": statistics.median(evals) if evals else None}
            out.append(
                {
                    "side": side,
                    "round": k,
                    "tps": got["aggregate_tps"],
                    "ttft_ms": got["ttft_ms"],
                    **figures,
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return {"streams": streams, "rounds": out, "folder": str(folder)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--peer", action="store_true", help="llama-server's rounds too")
    args = parser.parse_args(argv)
    settings = start_cli("bench.burst_trace", " (run `make model`)")
    if isinstance(settings, int):
        return settings
    folder = Path(tempfile.mkdtemp(prefix="llamaql-burst-trace-"))
    result = asyncio.run(run(settings, args.streams, args.rounds, args.peer, folder))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
