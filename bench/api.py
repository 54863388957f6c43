"""Benchmark 4, API overhead: `conversations(first: 20)` against a database holding
1,000 conversations of one user, driven by a separate load-generating process
(bench.loadgen) over loopback for a bounded count and time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlmodel import Session

from bench.common import Result
from bench.server import ServerProcess
from llamaql.models import Conversation
from llamaql.settings import Settings


@dataclass(frozen=True, slots=True)
class ApiParams:
    conversations: int = 1000
    requests: int = 3000
    duration_s: float = 20.0
    concurrency: int = 8
    page: int = 20


SMOKE = ApiParams(conversations=30, requests=40, duration_s=10.0, concurrency=2)


def seed_conversations(database: Path, user: uuid.UUID, count: int) -> None:
    """Insert `count` conversations for `user`, one second of activity apart, straight
    into the server's (already migrated) SQLite file: seeding is not what is measured."""
    engine = create_engine(f"sqlite:///{database}")
    base = datetime.now(UTC) - timedelta(seconds=count)
    try:
        with Session(engine) as session:
            for index in range(count):
                stamp = base + timedelta(seconds=index)
                session.add(
                    Conversation(
                        user_id=user,
                        title=f"bench conversation {index}",
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
            session.commit()
    finally:
        engine.dispose()


async def run_loadgen(server: ServerProcess, user: uuid.UUID, params: ApiParams) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        server.http_url,
        "--user",
        str(user),
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


async def run(settings: Settings, params: ApiParams) -> Result:
    result = Result("api_overhead", params={**asdict(params), "query": "conversations(first)"})
    user = uuid.uuid4()
    async with ServerProcess(settings) as server:
        await asyncio.to_thread(seed_conversations, server.database, user, params.conversations)
        load = await run_loadgen(server, user, params)
    result.figures = load
    latency = load["latency_ms"]
    result.summary = (
        f"api_overhead: conversations(first: {params.page}) over {params.conversations} rows: "
        f"{load['requests_per_s']} req/s, p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
        f"{load['errors']} errors ({load['requests']} requests, c={params.concurrency})"
    )
    return result
