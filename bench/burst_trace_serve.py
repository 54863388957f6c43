"""`llamaql serve` with a timeline, for `bench.burst_trace` (never for figures of speed:
the wrappers cost a few microseconds per call).

`python bench/burst_trace_serve.py serve` runs the CLI after wrapping a few methods of
the engine and the server, each appending one line per call to $BURST_TRACE_FILE:
`<perf_counter> <thread> <event> key=value ...`. `time.perf_counter` is CLOCK_MONOTONIC,
the bench process's clock too, so the lines line up with the client's. Events: `put`
(a request reaches the engine's queue), `place` (its sequence chosen, KV parked and
restored), `decode` (one step: llama_decode alone as `llama_ms`, the step's Python
around it as `py_ms`), `first_sample` (a reply's first token), `flush` (text handed to
the loop), `ws_send` (a WebSocket frame out), and `thread` (a thread's OS id and name,
for the per-thread CPU in /proc).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_FILE = Path(os.environ.get("BURST_TRACE_FILE", "burst-trace.log")).open("a", buffering=1)  # noqa: SIM115
_LOCK = threading.Lock()


def event(kind: str, **fields: object) -> None:
    values = " ".join(f"{key}={value}" for key, value in fields.items())
    thread = threading.current_thread().name.replace(" ", "_")
    line = f"{time.perf_counter():.6f} {thread} {kind} {values}"
    with _LOCK:
        _FILE.write(line.rstrip() + "\n")


def _after(cls: Any, method: str, report: Callable[..., None]) -> None:
    """Wrap `cls.method`: `report(self, result, seconds, *args)` after each call."""
    original = getattr(cls, method)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        result = original(self, *args, **kwargs)
        report(self, result, time.perf_counter() - began, *args)
        return result

    setattr(cls, method, wrapper)


def _install() -> None:
    import uvicorn.protocols.websockets.websockets_sansio_impl as sansio

    from llamaql.engine.admission import AdmissionQueue
    from llamaql.engine.jobs import Job
    from llamaql.engine.local.llama_runtime import LlamaRuntime
    from llamaql.engine.local.placement import SequencePlacement
    from llamaql.engine.local.reply import Reply
    from llamaql.engine.local.scheduler import BatchScheduler

    _after(AdmissionQueue, "put", lambda q, r, s, job: event("put", bg=job.background))
    _after(
        SequencePlacement,
        "place",
        lambda p, r, s, *a: event("place", ms=f"{1000 * s:.2f}", cached=r[1]),
    )
    llama_s: dict[int, float] = {}  # the latest llama_decode's seconds, by thread

    def decoded(runtime: Any, result: Any, seconds: float, *args: Any) -> None:
        llama_s[threading.get_ident()] = seconds

    _after(LlamaRuntime, "decode", decoded)

    def stepped(scheduler: Any, result: Any, seconds: float, planned: Any) -> None:
        llama = llama_s.get(threading.get_ident(), 0.0)
        tokens = sum(len(part.tokens) for _, part in planned)
        event(
            "decode",
            llama_ms=f"{1000 * llama:.2f}",
            py_ms=f"{1000 * (seconds - llama):.2f}",
            parts=len(planned),
            tokens=tokens,
        )

    _after(BatchScheduler, "_decode", stepped)
    sampled: set[int] = set()

    def first(reply: Any, result: Any, seconds: float, *args: Any) -> None:
        if id(reply) not in sampled:
            sampled.add(id(reply))
            event("first_sample")

    _after(Reply, "sample", first)
    _after(Job, "_flush", lambda job, r, s: event("flush"))
    protocol: Any = sansio.WebSocketsSansIOProtocol
    send = protocol.send

    async def traced_send(self: Any, message: Any) -> None:
        await send(self, message)
        if message.get("type") == "websocket.send":
            event("ws_send")

    protocol.send = traced_send
    run = threading.Thread.run

    def named_run(self: threading.Thread) -> None:
        event("thread", tid=threading.get_native_id(), name=self.name.replace(" ", "_"))
        run(self)

    threading.Thread.run = named_run  # type: ignore[method-assign]
    event("thread", tid=threading.get_native_id(), name="MainThread")


if __name__ == "__main__":
    _install()
    from llamaql.cli import main

    sys.exit(main(sys.argv[1:]))
