"""The engines a remote llamaql talks to in these tests, as real HTTP servers:

- `Upstream`: llama-cpp-python's OpenAI-compatible server on the default model, in a
  child process, behind an API key.
- `ScriptedServer`: a small OpenAI-compatible server in a thread whose streams either
  drop the connection after a few pieces, as a crashed engine would, or go on until the
  client leaves.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx
from tests.integration.chat.live import DEFAULT_MODEL_PATH, free_port

LAUNCHER = Path(__file__).with_name("llama_cpp_server.py")
START_TIMEOUT_S = 180.0
API_KEY = "remote-engine-test-key"  # a test value: the server runs on loopback only
UPSTREAM_CONTEXT = 2048


@dataclass
class Upstream:
    """`python -m llama_cpp.server` on the default model, one request at a time (it has
    one context) and never interrupting one request for the next. With `models` (alias:
    file), it serves those from a config file instead, the first as its default, and
    loads the one each request names (its `/v1/models` lists the aliases)."""

    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    models: dict[str, Path] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _arguments(self) -> list[str]:
        if self.models is None:
            return [
                *("--model", str(DEFAULT_MODEL_PATH), "--host", "127.0.0.1"),
                *("--port", str(self.port), "--n_ctx", str(UPSTREAM_CONTEXT)),
                *("--n_threads", "1", "--api_key", API_KEY, "--interrupt_requests", "False"),
            ]
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "api_key": API_KEY,
            "interrupt_requests": False,
            "models": [
                {
                    "model": str(path),
                    "model_alias": alias,
                    "n_ctx": UPSTREAM_CONTEXT,
                    "n_threads": 1,
                }
                for alias, path in self.models.items()
            ],
        }
        path = self.log.with_suffix(".json")
        path.write_text(json.dumps(config))
        return ["--config_file", str(path)]

    def start(self) -> Self:
        command = [sys.executable, str(LAUNCHER), *self._arguments()]
        # Unbuffered: its "Disconnected from client" lines reach the log as they happen.
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"llama_cpp.server exited:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.api_url}/models", headers=self.auth(), timeout=5)
                if answer.status_code == 200:
                    return self
            time.sleep(0.3)
        raise AssertionError(f"llama_cpp.server not ready after {START_TIMEOUT_S}s:\n{self.tail()}")

    @staticmethod
    def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# What the dying server streams before it drops the connection.
DYING_PIECES = ("Hello", ", wor", "ld")
ENDLESS_PIECE = "and on "
ENDLESS_MAX_PIECES = 3000  # then it finishes: a bound should a client never leave


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ScriptedHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": "not found"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.server.endless:
            self._endless()
        else:
            self._die()

    def _event(self, chunk: dict[str, Any]) -> None:
        event = f"data: {json.dumps(chunk)}\n\n".encode()
        self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.flush()

    def _piece(self, text: str) -> None:
        self._event({"choices": [{"index": 0, "delta": {"content": text}}]})

    def _die(self) -> None:
        for piece in DYING_PIECES:
            self._piece(piece)
            time.sleep(0.05)
        # Dies: no finish reason, no [DONE], no last chunk of the chunked body.
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def _endless(self) -> None:
        try:
            for _ in range(ENDLESS_MAX_PIECES):
                self._piece(ENDLESS_PIECE)
                time.sleep(0.02)
            self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client closed the stream
            with self.server.lock:
                self.server.disconnects += 1
            self.close_connection = True


class _ScriptedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, endless: bool) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.endless = endless
        self.lock = threading.Lock()
        self.disconnects = 0


class ScriptedServer:
    """An OpenAI-compatible server (no tokenizer endpoint, so the budget is estimated)
    whose streams either die after DYING_PIECES or go on until the client leaves
    (`endless`), counting the clients that left."""

    def __init__(self, *, endless: bool = False) -> None:
        self._server = _ScriptedHTTPServer(endless=endless)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def disconnects(self) -> int:
        with self._server.lock:
            return self._server.disconnects

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
