"""Replicas on one PostgreSQL: every test gets its own database, created empty (servers
migrate it on start) and dropped afterwards, so parallel runs never share rows or
NOTIFY channels. Skipped without LLAMAQL_TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.integration.chat.live import Server
from tests.integration.postgres import POSTGRES_ENV, scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database of this test alone."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"set {POSTGRES_ENV} to run the replica tests")
    async with scratch_database("llamaql_replicas") as url:
        yield url


HEARTBEAT_S = 0.5
DEAD_AFTER_S = 3.0


class Replicas:
    """`llamaql serve` processes on one database, each named (LLAMAQL_REPLICA_ID)."""

    def __init__(self, pg_url: str, folder: Path) -> None:
        self.pg_url = pg_url
        self.folder = folder
        self.running: list[Server] = []

    def start(self, name: str) -> Server:
        server = Server(
            database=self.folder / f"{name}.unused",  # its folder is the server's cwd
            log=self.folder / f"{name}.log",
            env={
                "LLAMAQL_DATABASE_URL": self.pg_url,
                "LLAMAQL_REPLICA_ID": name,
                "LLAMAQL_HEARTBEAT_SECONDS": str(HEARTBEAT_S),
                "LLAMAQL_REPLICA_DEAD_AFTER_SECONDS": str(DEAD_AFTER_S),
                "LLAMAQL_CHECKPOINT_SECONDS": "0.5",
                "LLAMAQL_CONTEXT_SIZE": "512",
                "LLAMAQL_PARALLEL": "1",
                # Two model processes share the machine's cores.
                "LLAMAQL_N_THREADS": "1",
                "LLAMAQL_AUTO_TITLE": "false",
                "LLAMAQL_MAX_LIVE_REPLIES_PER_USER": "1",
            },
        ).start()
        self.running.append(server)
        return server

    def stop(self, server: Server, sig: signal.Signals = signal.SIGTERM) -> int:
        self.running.remove(server)
        return server.stop(sig)


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[Replicas]:
    made = Replicas(pg_url, tmp_path)
    yield made
    for server in list(made.running):
        made.stop(server, signal.SIGKILL)
