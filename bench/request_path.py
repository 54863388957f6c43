"""Where one `sendMessage` spends its time, from the subscribe frame in to the first
`TokenDelta` frame out: `python -m bench.request_path [--requests N] [--cprofile FILE]`.

The app runs in this process (uvicorn on a free loopback port, a temporary SQLite file,
the real default model), with timing wrappers around the request path's steps and a
statement counter on the database engine; a graphql-transport-ws client in the same
event loop sends N one-token messages, each on a new conversation, one at a time, and
the script prints the median milliseconds from the frame's arrival to each step, the
SQL statements per send, and the event loop's CPU per send. With --cprofile, the event
loop thread is profiled from each measured frame's arrival to its first TokenDelta frame
out (top functions by own CPU time): the window the time to first token pays for.

The wrappers are a measuring aid only (they cost microseconds); the figures to quote
for time to first token come from `python -m bench stream`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import itertools
import json
import pstats
import statistics
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.client import WsSession, create_conversation
from bench.common import start_cli
from bench.server import free_port
from bench.stream import STREAM_PROMPT
from llamaql.config import Config, load_config


class Marks:
    """Timestamps of one request's steps (the first time each step is seen)."""

    def __init__(self) -> None:
        self.current: dict[str, float] | None = None
        self.loop_cpu: dict[str, float] = {}  # the loop thread's CPU (ms) at each step
        self.loop_thread: int | None = None
        self.statements: list[tuple[float, float, str]] = []
        self.done: list[tuple[dict[str, float], list[tuple[float, float, str]]]] = []
        self.loop_cpu_done: list[dict[str, float]] = []
        self.profile: cProfile.Profile | None = None  # on from frame in to first delta out

    def mark(self, name: str) -> None:
        if self.current is not None and name not in self.current:
            self.current[name] = time.perf_counter()
            if threading.get_ident() == self.loop_thread:
                self.loop_cpu[name] = time.thread_time() * 1000.0

    def begin(self) -> None:
        self.current, self.statements, self.loop_cpu = {}, [], {}
        self.loop_thread = threading.get_ident()

    def end(self) -> None:
        if self.current is not None:
            self.done.append((self.current, self.statements))
            self.loop_cpu_done.append(self.loop_cpu)
        self.current = None


MARKS = Marks()


def _wrap_async(owner: Any, name: str, before: str, after: str | None = None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        MARKS.mark(before)
        try:
            return await original(*args, **kwargs)
        finally:
            if after is not None:
                MARKS.mark(after)

    setattr(owner, name, wrapper)


def _wrap_generator(owner: Any, name: str, before: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        MARKS.mark(before)
        async for item in original(*args, **kwargs):
            yield item

    setattr(owner, name, wrapper)


def _wrap_sync(owner: Any, name: str, before: str, after: str | None = None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        MARKS.mark(before)
        try:
            return original(*args, **kwargs)
        finally:
            if after is not None:
                MARKS.mark(after)

    setattr(owner, name, wrapper)


def instrument() -> None:
    """Timing wrappers on the request path (called before the app is built)."""
    import llamaql.api.schema  # noqa: F401  (the resolvers import it; import it first)
    from llamaql.api.resolvers import chat as chat_resolvers
    from llamaql.engine import jobs
    from llamaql.engine.local import engine as engine_module
    from llamaql.services.chat import events as chat_events
    from llamaql.services.chat import starting, submitting
    from llamaql.web.ws_handlers import LimitedTransportWSHandler

    _wrap_generator(chat_resolvers, "_relay", "resolver")
    _wrap_async(starting.ReplyStarter, "start", "start")
    _wrap_async(starting, "prepare_prompt", "prepare", "prepared")
    _wrap_sync(engine_module.LlamaEngine, "_prepare", "render_on_thread", "rendered")
    _wrap_async(submitting.ExchangeSubmitter, "_store", "store", "stored")
    _wrap_sync(engine_module.LlamaEngine, "submit", "engine_submit")
    _wrap_sync(jobs.Job, "post_position", "admitted")
    _wrap_sync(jobs.Job, "post_text", "first_token_sampled")
    _wrap_sync(jobs.Job, "_flush", "first_token_on_loop")

    original_to_schema = chat_resolvers.to_schema

    def to_schema(event_: Any) -> Any:
        if isinstance(event_, chat_events.Queued):
            MARKS.mark("queued_event")
        elif isinstance(event_, chat_events.Delta):
            MARKS.mark("delta_event")
        return original_to_schema(event_)

    chat_resolvers.to_schema = to_schema  # type: ignore[assignment]

    original_message = LimitedTransportWSHandler.handle_message

    async def handle_message(self: Any, message: Any) -> None:
        subscribe = isinstance(message, dict) and message.get("type") == "subscribe"
        if subscribe and MARKS.current is not None:
            MARKS.mark("frame_in")
            MARKS.current["loop_cpu_in"] = time.thread_time() * 1000.0
            MARKS.current["process_cpu_in"] = time.process_time() * 1000.0
            if MARKS.profile is not None:
                MARKS.profile.enable()
        await original_message(self, message)

    LimitedTransportWSHandler.handle_message = handle_message  # type: ignore[method-assign]

    original_send = LimitedTransportWSHandler.send_message

    async def send_message(self: Any, message: Any) -> None:
        payload = message.get("payload") if isinstance(message, dict) else None
        data = payload.get("data") if isinstance(payload, dict) else None
        kind = ((data or {}).get("sendMessage") or {}).get("__typename")
        if kind == "MessageQueued":
            MARKS.mark("queued_frame_out")
        if kind == "TokenDelta" and MARKS.current is not None:
            first = "delta_frame_out" not in MARKS.current
            MARKS.mark("delta_frame_out")
            if first:
                MARKS.current["loop_cpu_out"] = time.thread_time() * 1000.0
                MARKS.current["process_cpu_out"] = time.process_time() * 1000.0
                if MARKS.profile is not None:
                    MARKS.profile.disable()
        await original_send(self, message)

    LimitedTransportWSHandler.send_message = send_message  # type: ignore[method-assign]


def count_statements(engine: AsyncEngine) -> None:
    starts: dict[int, float] = {}

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        starts[threading.get_ident()] = time.perf_counter()

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if MARKS.current is not None:
            began = starts.pop(threading.get_ident(), time.perf_counter())
            words = " ".join(statement.split()[:3])
            MARKS.statements.append((began, time.perf_counter(), words))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)

    def commit(_conn: Any) -> None:
        if MARKS.current is not None:
            now = time.perf_counter()
            MARKS.statements.append((now, now, "COMMIT"))

    event.listen(engine.sync_engine, "commit", commit)


ORDER = (
    "frame_in",
    "resolver",
    "start",
    "prepare",
    "render_on_thread",
    "rendered",
    "prepared",
    "store",
    "engine_submit",
    "stored",
    "queued_event",
    "queued_frame_out",
    "admitted",
    "first_token_sampled",
    "first_token_on_loop",
    "delta_event",
    "delta_frame_out",
)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def summarize(client_ttft_ms: list[float]) -> dict[str, Any]:
    steps: dict[str, list[float]] = defaultdict(list)
    counts: list[int] = []
    kinds: dict[str, int] = defaultdict(int)
    statement_ms: list[float] = []
    cpu: list[float] = []
    process_cpu: list[float] = []
    for marks, statements in MARKS.done:
        origin = marks["frame_in"]
        cutoff = marks.get("delta_frame_out", float("inf"))
        statements = [s for s in statements if s[0] < cutoff]
        for name in ORDER:
            if name in marks:
                steps[name].append((marks[name] - origin) * 1000.0)
        counts.append(sum(1 for s in statements if s[2] != "COMMIT"))
        statement_ms.append(sum(end - begin for begin, end, _ in statements) * 1000.0)
        for _, _, words in statements:
            kinds[words] += 1
        if "loop_cpu_out" in marks:
            cpu.append(marks["loop_cpu_out"] - marks["loop_cpu_in"])
            process_cpu.append(marks["process_cpu_out"] - marks["process_cpu_in"])
    segments: dict[str, list[float]] = defaultdict(list)
    working: list[float] = []  # the loop's CPU less its time waiting for the first token
    for (marks, _), loop_cpu in zip(MARKS.done, MARKS.loop_cpu_done, strict=True):
        seen = sorted((marks[name], loop_cpu[name], name) for name in loop_cpu)
        spent = 0.0
        for (_, before, first), (_, after, second) in itertools.pairwise(seen):
            segments[f"{first} -> {second}"].append(after - before)
            # What the loop does while the prompt evaluates, after the exchange is stored
            # and announced, is its own housekeeping (and this client's), not the send's.
            if second != "first_token_on_loop":
                spent += after - before
        if "delta_frame_out" in loop_cpu:
            working.append(spent)
    runs = len(MARKS.done) or 1
    if MARKS.done:
        marks, statements = MARKS.done[-1]
        origin = marks["frame_in"]
        print("the last send, ms after the frame arrived (start, duration, step):")
        timeline = [(_ms(b - origin), _ms(e - b), w) for b, e, w in statements]
        timeline += [(_ms(t - origin), 0.0, n) for n, t in marks.items() if n in ORDER]
        for item in sorted(timeline):
            print(*item)
    return {
        "requests": len(MARKS.done),
        "ms_after_frame_in_median": {
            name: round(statistics.median(values), 2) for name, values in steps.items()
        },
        # The loop thread's CPU between consecutive steps it ran (in the order they came).
        "loop_cpu_ms_by_step_median": {
            name: round(statistics.median(values), 2)
            for name, values in segments.items()
            if len(values) * 2 > len(MARKS.done)
        },
        "statements_per_send": statistics.median(counts) if counts else None,
        "statement_kinds_per_send": {k: round(v / runs, 2) for k, v in kinds.items()},
        "statement_ms_per_send_median": round(statistics.median(statement_ms), 2)
        if statement_ms
        else None,
        "loop_cpu_ms_frame_in_to_first_delta_median": round(statistics.median(cpu), 2)
        if cpu
        else None,
        # The same less the step that ends with the first token on the loop (the wait).
        "loop_cpu_ms_send_steps_median": round(statistics.median(working), 2) if working else None,
        # Every thread: the loop, the database's, and the scheduler's prompt evaluation.
        "process_cpu_ms_frame_in_to_first_delta_median": round(statistics.median(process_cpu), 2)
        if process_cpu
        else None,
        "client_ttft_ms_median": round(statistics.median(client_ttft_ms), 2),
    }


async def run(settings: Config, requests: int, warmup: int, cprofile: Path | None) -> None:
    instrument()
    from llamaql.cli import uvicorn_options
    from llamaql.web.app import create_app

    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="llamaql-reqpath-"))
    settings = load_config(
        **{
            **settings.flat_values(),
            "port": port,
            "database_url": f"sqlite+aiosqlite:///{folder / 'bench.db'}",
            "auto_title": False,
        }
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, **uvicorn_options(settings.server), log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.05)
    count_statements(app.state.container.resolve(AsyncEngine))
    url = f"http://127.0.0.1:{port}/graphql"
    user = str(uuid.uuid4())
    options = {"temperature": 0.0, "seed": 42, "maxTokens": 1}
    ttft: list[float] = []
    # On the thread's CPU clock: on a shared machine a wall-clock profile charges
    # whichever function was running when the thread was preempted.
    profile = cProfile.Profile(time.thread_time) if cprofile is not None else None
    try:
        async with (
            httpx.AsyncClient(timeout=30) as http,
            WsSession(f"ws://127.0.0.1:{port}/graphql", user) as ws,
        ):
            for index in range(warmup + requests):
                conversation = await create_conversation(http, url, user, f"rp {index}")
                measured = index >= warmup
                if measured:
                    MARKS.begin()
                    MARKS.profile = profile
                timing = await ws.send_message(conversation, STREAM_PROMPT, options)
                if measured:
                    if profile is not None:
                        profile.disable()  # a send that never streamed a delta
                    MARKS.profile = None
                    MARKS.end()
                    if timing.ttft_s is not None:
                        ttft.append(timing.ttft_s * 1000.0)
    finally:
        server.should_exit = True
        await serving
    print(json.dumps(summarize(ttft), indent=2))
    if profile is not None and cprofile is not None:
        profile.dump_stats(str(cprofile))
        pstats.Stats(str(cprofile)).sort_stats("tottime").print_stats(40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_path", description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cprofile", type=Path, help="profile the loop thread into FILE")
    args = parser.parse_args(argv)
    settings = start_cli("bench.request_path", " (run `make model`)")
    if isinstance(settings, int):
        return settings
    import uvloop  # as uvicorn picks it for `llamaql serve`

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(settings, args.requests, args.warmup, args.cprofile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
