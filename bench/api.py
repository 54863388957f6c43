"""Benchmark 4, API overhead: three reads of llamaql against a bare Starlette + SQLAlchemy
endpoint (bench/bare.py) that runs the same statements on the same SQLite file and
answers with the same JSON, under the same uvicorn set-up.

One user holds `conversations` conversations; `search_conversations` of them hold
`messages_each` messages (a branch, user and assistant turns) whose text every search
matches, and one more holds `thread_messages` messages for the `conversation {
messages }` read. For each read (`conversations(first: 20)`, `conversation(id) {
messages(first: 20) }`, `search(query, first: 20)`), `rounds` rounds each run the load
generator (bench.loadgen, its own process) against both servers, alternating which goes
first, for a bounded count and time; each run meters the server's CPU. Reported per
read: each side's req/s, latency and server CPU per request (medians over the rounds),
the llamaql/bare req/s ratio of every round and its median, and whether both sides
answered alike (same digest of the first answer).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlmodel import Session

from bench.common import REPO_ROOT, Result
from bench.profile import CpuMeter
from bench.server import ChildServer, ServerProcess
from llamaql.config import Config
from llamaql.persistence.models import Conversation, Message, MessageKind, MessageStatus

READS = ("conversations", "messages", "search")
SEARCH_QUERY = "dragon bread"


@dataclass(frozen=True, slots=True)
class ApiParams:
    conversations: int = 1000
    requests: int = 1500
    duration_s: float = 6.0
    concurrency: int = 8
    page: int = 20
    rounds: int = 3
    search_conversations: int = 60
    messages_each: int = 4
    thread_messages: int = 40


SMOKE = ApiParams(
    conversations=30,
    requests=40,
    duration_s=10.0,
    concurrency=2,
    rounds=1,
    search_conversations=10,
    thread_messages=25,
)


@dataclass(frozen=True, slots=True)
class Seeded:
    user: uuid.UUID
    thread: uuid.UUID  # the conversation the messages read pages through


def _chain(session: Session, conversation: Conversation, texts: list[str]) -> None:
    """Messages one after another (user, assistant, ...), the last one current."""
    parent: uuid.UUID | None = None
    for seq, text in enumerate(texts, start=1):
        message = Message(
            conversation_id=conversation.id,
            user_id=conversation.user_id,
            seq=seq,
            parent_id=parent,
            kind=MessageKind.USER if seq % 2 else MessageKind.BOT,
            text=text,
            status=MessageStatus.COMPLETE.value,
            created_at=conversation.created_at,
            updated_at=conversation.created_at,
        )
        session.add(message)
        parent = message.id
    conversation.current_leaf_id = parent


def seed(database: Path, params: ApiParams) -> Seeded:
    """One user's conversations and messages, straight into the server's (already
    migrated) SQLite file (its triggers fill the search index): seeding is not what is
    measured."""
    user = uuid.uuid4()
    engine = create_engine(f"sqlite:///{database}")
    base = datetime.now(UTC) - timedelta(seconds=params.conversations + 1)
    try:
        with Session(engine) as session:
            rows = []
            for index in range(params.conversations):
                stamp = base + timedelta(seconds=index)
                row = Conversation(
                    user_id=user,
                    title=f"bench conversation {index}",
                    created_at=stamp,
                    updated_at=stamp,
                )
                session.add(row)
                rows.append(row)
            session.flush()
            for index, row in enumerate(rows[: params.search_conversations]):
                texts = [
                    f"Tell me story {index}.{turn} about a dragon who bakes bread at night"
                    for turn in range(params.messages_each)
                ]
                _chain(session, row, texts)
            thread = rows[-1]
            thread_texts = [f"message {n} of the thread" for n in range(params.thread_messages)]
            _chain(session, thread, thread_texts)
            session.commit()
            return Seeded(user, thread.id)
    finally:
        engine.dispose()


class BareServer(ChildServer):
    """bench/bare.py on a free port, reading the llamaql server's SQLite file."""

    name = "bare endpoint"

    def __init__(self, database: Path) -> None:
        super().__init__("llamaql-bare-", "bare.log")
        self.database = database

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])
        )
        command = [sys.executable, "-m", "bench.bare", "--database", str(self.database)]
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                [*command, "--port", str(self.port)],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def _ready(self, client: httpx.AsyncClient) -> bool:
        user = {"X-User-ID": str(uuid.uuid4())}
        response = await client.post(self.http_url, json={}, headers=user)
        return response.status_code == 400


async def run_loadgen(url: str, seeded: Seeded, read: str, params: ApiParams) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--user",
        str(seeded.user),
        "--read",
        read,
        "--conversation",
        str(seeded.thread),
        "--query",
        SEARCH_QUERY,
        "--requests",
        str(params.requests),
        "--duration",
        str(params.duration_s),
        "--concurrency",
        str(params.concurrency),
        "--page",
        str(params.page),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(params.duration_s + 120):
        out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.loadgen failed ({proc.returncode}): {err.decode()[-1000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


async def _measured(
    url: str, pid: int, seeded: Seeded, read: str, params: ApiParams
) -> dict[str, Any]:
    meter = CpuMeter(pid)
    with meter:
        load = await run_loadgen(url, seeded, read, params)
    served = load["requests"] + 1 + 20  # the digest request and the warm-up ones too
    load["server_cpu_ms_per_request"] = round(1000.0 * sum(meter.totals.values()) / served, 3)
    return load


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


def _read_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    sides: dict[str, Any] = {}
    for side in ("llamaql", "bare"):
        mine = [run[side] for run in runs]
        sides[side] = {
            "requests_per_s": _median([m["requests_per_s"] for m in mine]),
            "latency_p50_ms": _median([m["latency_ms"]["p50"] for m in mine]),
            "latency_p95_ms": _median([m["latency_ms"]["p95"] for m in mine]),
            "server_cpu_ms_per_request": _median([m["server_cpu_ms_per_request"] for m in mine]),
            "errors": sum(m["errors"] for m in mine),
        }
    ratios = [
        round(run["llamaql"]["requests_per_s"] / run["bare"]["requests_per_s"], 3)
        for run in runs
        if run["llamaql"]["requests_per_s"] and run["bare"]["requests_per_s"]
    ]
    return {
        **sides,
        "ratio_rounds": ratios,
        "ratio_median": _median(list(ratios)),
        "same_answer": all(
            run["llamaql"]["answer_digest"] == run["bare"]["answer_digest"] for run in runs
        ),
        "runs": runs,
    }


async def run(settings: Config, params: ApiParams) -> Result:
    result = Result("api_overhead", params={**asdict(params), "reads": list(READS)})
    async with ServerProcess(settings) as server:
        seeded = await asyncio.to_thread(seed, server.database, params)
        async with BareServer(server.database) as bare:
            targets = {"llamaql": (server.http_url, server.pid), "bare": (bare.http_url, bare.pid)}
            figures: dict[str, Any] = {}
            for read in READS:
                runs = []
                for index in range(params.rounds):
                    order = ("llamaql", "bare") if index % 2 == 0 else ("bare", "llamaql")
                    run_: dict[str, Any] = {"first": order[0]}
                    for side in order:
                        url, pid = targets[side]
                        run_[side] = await _measured(url, pid, seeded, read, params)
                    runs.append(run_)
                figures[read] = _read_figures(runs)
    result.figures = figures
    result.summary = (
        "api_overhead: "
        + "; ".join(
            f"{read} llamaql {f['llamaql']['requests_per_s']} vs bare "
            f"{f['bare']['requests_per_s']} req/s ({f['ratio_median']}x, rounds "
            f"{'/'.join(str(r) for r in f['ratio_rounds'])}), "
            f"server CPU {f['llamaql']['server_cpu_ms_per_request']} vs "
            f"{f['bare']['server_cpu_ms_per_request']} ms/request, same answer {f['same_answer']}"
            for read, f in figures.items()
        )
        + f" (c={params.concurrency}, {params.conversations} conversations)"
    )
    return result
