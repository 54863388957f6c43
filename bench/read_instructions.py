"""Instructions per read, counted by valgrind: `python -m bench.read_instructions [--read
NAME] [--side llamaql|bare] [--requests N]`.

The same in-process reads as bench/read_path.py (the app with no engine and the bare
endpoint on one seeded SQLite file, ASGI calls, 8 at a time), run under valgrind's
callgrind with instrumentation off until the loads: for each read and side, N and then
3N requests are counted (every thread: aiosqlite's included) and the figure is their
difference over 2N, so the start-up, the warm-up and the counting windows' own overhead
drop out. Instructions do not wait for a busy CPU: on a shared machine, where CPU time
per request swings by half between runs, they separate changes of a few percent. They
are not time (cache misses differ between the sides); the figure to quote is still
`python -m bench api`'s. Needs `valgrind` (and its `callgrind_control`) on the PATH;
about a minute per read and side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from bench.api import ApiParams, seed
from bench.bare import create_bare_app
from bench.loadgen import READS, read_body
from bench.read_path import App, load
from llamaql.config import load_config
from llamaql.web.app import create_app

SIDES = ("llamaql", "bare")
CONCURRENCY = 8
WARMUP = 30


async def _callgrind(*args: str) -> None:
    """callgrind_control on this process, the loop kept busy meanwhile: valgrind reads
    the command between the instructions it runs."""
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *args,
        str(os.getpid()),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    while proc.returncode is None:
        try:
            await asyncio.wait_for(proc.wait(), 0.05)
        except TimeoutError:
            sum(range(1000))


async def _count(read: str, side: str, requests: int) -> None:
    """The child, under valgrind: dumps the counts of N and of 3N requests."""
    with tempfile.TemporaryDirectory(prefix="llamaql-read-instructions-") as folder:
        database = Path(folder) / "llamaql.db"
        config = load_config(
            database_url=f"sqlite+aiosqlite:///{database}", kv_dir=Path(folder) / "kv"
        )
        app = create_app(config, engine=None)
        async with app.router.lifespan_context(app):
            seeded = await asyncio.to_thread(seed, database, ApiParams())
            bare_engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
            try:
                target: App = app if side == "llamaql" else create_bare_app(bare_engine)
                user = str(seeded.user)
                body = read_body(read, 20, str(seeded.thread), "dragon bread")
                encoded = json.dumps(body).encode()
                await load(target, encoded, user, WARMUP, CONCURRENCY)
                for count in (requests, 3 * requests):
                    await _callgrind("--zero")
                    await _callgrind("--instr=on")
                    await load(target, encoded, user, count, CONCURRENCY)
                    await _callgrind("--instr=off")
                    await _callgrind(f"--dump=requests {count}")
            finally:
                await bare_engine.dispose()


def measure(read: str, side: str, requests: int) -> float:
    """Instructions per request of `read` on `side` (the difference of 3N and N)."""
    with tempfile.TemporaryDirectory(prefix="llamaql-callgrind-") as folder:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={folder}/out.%p",
            sys.executable,
            "-m",
            "bench.read_instructions",
            "--child",
            "--read",
            read,
            "--side",
            side,
            "--requests",
            str(requests),
        ]
        # Under valgrind, on a busy machine, a unit of work can wait for a user's database
        # slot or run longer than the 10 s defaults, and a read fails (QUEUE_FULL): the
        # limits' lengths are not on the measured path, so they are raised for the child.
        limits = {"LLAMAQL_DB_WAIT_SECONDS": "600", "LLAMAQL_DB_TIMEOUT_SECONDS": "600"}
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, **limits})
        totals: dict[int, int] = {}
        for dump in Path(folder).glob("out.*.*"):
            text = dump.read_text(errors="replace")
            counted = re.search(r"^desc: Trigger: .*requests (\d+)$", text, re.MULTILINE)
            total = re.search(r"^totals: (\d+)", text, re.MULTILINE)
            if counted and total:
                totals[int(counted.group(1))] = int(total.group(1))
    if set(totals) != {requests, 3 * requests}:
        raise RuntimeError(f"callgrind dumps missing: found counts for {sorted(totals)}")
    return (totals[3 * requests] - totals[requests]) / (2 * requests)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.read_instructions", description=__doc__)
    parser.add_argument("--read", action="append", choices=list(READS))
    parser.add_argument("--side", action="append", choices=SIDES)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    reads, sides = args.read or list(READS), args.side or list(SIDES)
    if args.child:
        asyncio.run(_count(reads[0], sides[0], args.requests))
        return
    figures: dict[str, Any] = {}
    for read in reads:
        counts = {side: round(measure(read, side, args.requests)) for side in sides}
        figures[read] = {"instructions_per_request": counts}
        if len(counts) == len(SIDES):
            figures[read]["llamaql_over_bare"] = round(counts["llamaql"] / counts["bare"], 3)
        print(json.dumps({read: figures[read]}), flush=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
