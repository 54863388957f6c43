"""The time-to-first-token probe run with --profile: a burst of one-token `sendMessage`
requests on fresh conversations, with py-spy (idle frames included) on the server, so
that the profile shows where the server spends the time before the first token rather
than the decode loop.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench.client import WsSession, create_conversation
from bench.common import ms, spread, utc_stamp
from bench.profile import CpuMeter, PySpy, summarize
from bench.server import ServerProcess

PROBE_REQUESTS = 60
PROBE_RATE = 400  # samples/s: a request's pre-token path is only tens of milliseconds


async def ttft_probe(
    server: ServerProcess,
    http: httpx.AsyncClient,
    ws: WsSession,
    prompt: str,
    *,
    requests: int = PROBE_REQUESTS,
    profile_dir: Path,
) -> dict[str, Any]:
    options = {"temperature": 0.0, "seed": 42, "maxTokens": 1}
    conversations = [
        await create_conversation(http, server.http_url, ws.user, f"probe {index}")
        for index in range(requests)
    ]
    output = profile_dir / f"serve-pyspy-ttft-{utc_stamp()}.txt"
    spy = PySpy(server.pid, output, rate=PROBE_RATE, idle=True, lines=True)
    await spy.start()
    meter = CpuMeter(server.pid)
    try:
        started = time.perf_counter()
        with meter:
            timings = [await ws.send_message(c, prompt, options) for c in conversations]
        wall_ms = (time.perf_counter() - started) * 1000.0
    finally:
        await spy.stop()
    queued = [ms(t.queued_s) for t in timings if t.queued_s is not None]
    ttft = [ms(t.ttft_s) for t in timings if t.ttft_s is not None]
    prompt_ms = [float(t.usage["promptMs"]) for t in timings if t.usage]
    return {
        "requests": requests,
        "wall_ms_per_request": round(wall_ms / requests, 2),
        "server_cpu_ms_per_request": {
            thread: round(1000.0 * seconds / requests, 2)
            for thread, seconds in meter.report(requests)["threads_s"].items()
        },
        "ttft_ms": spread(ttft),
        "queued_ms": spread(queued),
        "engine_prompt_ms": spread(prompt_ms),
        "profile_file": str(output),
        "threads": _per_request_ms(summarize(output), spy.rate, requests),
    }


def _per_request_ms(threads: dict[str, Any], rate: int, requests: int) -> dict[str, Any]:
    """Percent of samples -> milliseconds per request (wall time, idle frames included:
    a waiting thread is sampled too)."""
    out: dict[str, Any] = {}
    for thread, summary in threads.items():
        scale = summary["samples"] / rate * 1000.0 / requests / 100.0
        out[thread] = {
            "samples": summary["samples"],
            "inclusive_ms_per_request": {
                frame: round(pct * scale, 2) for frame, pct in summary["inclusive_pct"].items()
            },
            "self_ms_per_request": {
                frame: round(pct * scale, 2) for frame, pct in summary["self_pct"].items()
            },
        }
    return out
