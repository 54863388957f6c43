"""Where a read's CPU goes, in process: `python -m bench.read_path [--read NAME]
[--requests N] [--concurrency C] [--rounds R] [--cprofile FILE]`.

The app (no engine) and bench/bare.py's endpoint run in this process on one temporary
SQLite file seeded as `python -m bench api` seeds it; each read is sent to both as ASGI
calls (no sockets, no HTTP parsing: what is left is the apps' own work), C at a time,
rounds alternating which side goes first. Printed per read: each side's CPU per request
(this process, every thread: aiosqlite's included) and their ratio, medians over the
rounds, and whether both answered alike. With --cprofile, llamaql's side of the last
round of the first read is profiled (top functions by own and by cumulative time).

This is a tool for finding costs; the figure to quote is `python -m bench api`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from bench.api import ApiParams, Seeded, seed
from bench.bare import create_bare_app
from bench.loadgen import READS, read_body
from llamaql.config import load_config
from llamaql.web.app import create_app

App = Callable[[Any, Any, Any], Awaitable[None]]


async def call(app: App, body: bytes, user: str) -> tuple[int, bytes]:
    """One POST /graphql through the ASGI app; its status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-user-id", user.encode()),
        ],
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # no disconnect while the app answers
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def load(app: App, body: bytes, user: str, requests: int, concurrency: int) -> float:
    """CPU seconds per request over `requests` calls, `concurrency` at a time."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status, answer = await call(app, body, user)
            if status != 200 or b'"errors"' in answer:
                raise RuntimeError(f"read failed ({status}): {answer[:300]!r}")

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / requests


def _canonical(answer: bytes) -> str:
    return json.dumps(json.loads(answer), sort_keys=True)


async def measure(apps: dict[str, App], seeded: Seeded, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    profiler = cProfile.Profile() if args.cprofile else None
    user = str(seeded.user)
    for index, read in enumerate(args.read):
        body = json.dumps(read_body(read, 20, str(seeded.thread), "dragon bread")).encode()
        answers = {side: (await call(app, body, user))[1] for side, app in apps.items()}
        for app in apps.values():  # warm-up
            await load(app, body, user, 50, args.concurrency)
        cpu: dict[str, list[float]] = {side: [] for side in apps}
        for round_ in range(args.rounds):
            order = list(apps) if round_ % 2 == 0 else list(reversed(apps))
            for side in order:
                last = round_ == args.rounds - 1
                profiling = profiler is not None and side == "llamaql" and last and index == 0
                if profiling and profiler is not None:
                    profiler.enable()
                per = await load(apps[side], body, user, args.requests, args.concurrency)
                if profiling and profiler is not None:
                    profiler.disable()
                cpu[side].append(per)
        medians = {side: statistics.median(values) for side, values in cpu.items()}
        figures[read] = {
            "cpu_ms_per_request": {s: round(1000 * v, 3) for s, v in medians.items()},
            "rounds_ms": {s: [round(1000 * v, 3) for v in vs] for s, vs in cpu.items()},
            "llamaql_over_bare": round(medians["llamaql"] / medians["bare"], 3),
            "same_answer": _canonical(answers["llamaql"]) == _canonical(answers["bare"]),
        }
    if profiler is not None:
        profiler.dump_stats(args.cprofile)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(50)
    return figures


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="llamaql-read-path-") as folder:
        database = Path(folder) / "llamaql.db"
        config = load_config(
            database_url=f"sqlite+aiosqlite:///{database}", kv_dir=Path(folder) / "kv"
        )
        app: Starlette = create_app(config, engine=None)
        async with app.router.lifespan_context(app):
            seeded = await asyncio.to_thread(seed, database, ApiParams())
            bare_engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
            try:
                apps: dict[str, App] = {"llamaql": app, "bare": create_bare_app(bare_engine)}
                return await measure(apps, seeded, args)
            finally:
                await bare_engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.read_path", description=__doc__)
    parser.add_argument("--read", action="append", choices=list(READS))
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cprofile", help="profile llamaql's last round into this file")
    args = parser.parse_args(argv)
    args.read = args.read or list(READS)
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
