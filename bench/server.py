"""A live `llamaql serve` subprocess on a free loopback port with a temporary SQLite file.

The server gets the bench's resolved engine settings through its environment, so the
raw llama.cpp side and the server load the model identically. Its log goes to a file in
the temporary folder, which is kept (and named in the error) when start-up fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from llamaql.config import Config

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    """The installed `llamaql` script beside this interpreter, else `python -m llamaql`."""
    script = shutil.which("llamaql", path=str(Path(sys.executable).parent))
    return [script, "serve"] if script else [sys.executable, "-m", "llamaql", "serve"]


def server_env(
    settings: Config, port: int, database: Path, *, log_level: str = "WARNING"
) -> dict[str, str]:
    """The engine settings the bench resolved, passed explicitly so nothing can drift."""
    engine = settings.engine
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLAMAQL_")}
    env.update(
        LLAMAQL_HOST="127.0.0.1",
        LLAMAQL_PORT=str(port),
        LLAMAQL_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        LLAMAQL_MODEL_PATH=str(engine.model_path.resolve()),
        LLAMAQL_N_BATCH=str(engine.n_batch),
        LLAMAQL_USE_EXTRA_BUFTS=str(engine.use_extra_bufts).lower(),
        LLAMAQL_QUEUE_SIZE=str(engine.queue_size),
        LLAMAQL_PARALLEL=str(engine.parallel),
        LLAMAQL_PROMPT_CACHE_MB=str(engine.prompt_cache_mb),
        LLAMAQL_KV_DISK_MB=str(engine.kv_disk_mb),  # LLAMAQL_KV_DIR: .kv in the server's folder
        LLAMAQL_STREAM_INTERVAL_MS=str(engine.stream_interval_ms),
        LLAMAQL_SYSTEM_PROMPT=settings.chat.system_prompt,
        LLAMAQL_LOG_LEVEL=log_level,
    )
    optional = {
        "LLAMAQL_N_THREADS": engine.n_threads,
        "LLAMAQL_CONTEXT_SIZE": engine.context_size,
        "LLAMAQL_N_GPU_LAYERS": engine.n_gpu_layers,
        "LLAMAQL_DECODE_LANES": engine.decode_lanes,
    }
    env.update({key: str(value) for key, value in optional.items() if value is not None})
    return env


class ChildServer:
    """A server child process on a free loopback port, with its files in a temporary
    folder: `async with` starts it and waits until `_ready`, and stops it on exit (the
    folder is kept when start-up or the body failed). Subclasses say how to spawn it,
    when it is ready and how to stop it gracefully."""

    name = "server"
    stop_signal = signal.SIGTERM
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(self, prefix: str, log_name: str) -> None:
        self.port = free_port()
        self._tmp = Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = self._tmp / log_name
        self.keep_log_as: Path | None = None  # where stop() copies the log before cleaning up
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} not started")
        return self._proc.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    async def _ready(self, client: httpx.AsyncClient) -> bool:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._proc = await asyncio.to_thread(self._spawn)
        try:
            await self._wait_ready()
        except BaseException:
            self.stop(keep_files=True)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(keep_files=exc is not None)

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self._proc.returncode}: see {self._tmp}"
                    )
                try:
                    if await self._ready(client):
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT_S}s: see {self._tmp}")

    def stop(self, *, keep_files: bool = False) -> None:
        """The graceful signal, then SIGKILL if it hangs; idempotent. The whole log is
        copied to `keep_log_as` when that is set."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and self.keep_log_as is not None and self.log_path.is_file():
            self.keep_log_as.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, self.keep_log_as)
        if not keep_files:
            shutil.rmtree(self._tmp, ignore_errors=True)


class ServerProcess(ChildServer):
    """`async with ServerProcess(settings) as server:` -> a ready server; stops on exit.
    `extra_env` adds LLAMAQL_* variables the settings object does not carry (the peer
    benchmark's LLAMAQL_PARALLEL)."""

    name = "llamaql serve"
    stop_signal = signal.SIGINT  # uvicorn's graceful stop

    def __init__(
        self,
        settings: Config,
        *,
        extra_env: Mapping[str, str] | None = None,
        log_level: str = "WARNING",
        command: list[str] | None = None,
    ) -> None:
        super().__init__("llamaql-bench-", "serve.log")
        self.settings = settings
        self.extra_env = dict(extra_env or {})
        self.command = command or serve_command()  # bench.burst_trace runs a traced one
        self.log_level = log_level
        self.database = self._tmp / "bench.db"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = server_env(self.settings, self.port, self.database, log_level=self.log_level)
        env.update(self.extra_env)
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                self.command,
                cwd=self._tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def _ready(self, client: httpx.AsyncClient) -> bool:
        response = await client.post(self.http_url, json={"query": "{__typename}"})
        return response.status_code == 200

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
