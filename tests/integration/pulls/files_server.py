"""A local HTTP server for pull tests (there is no model hub on these machines): files
served from memory with Range support, and the misbehaviours a pull must survive or
refuse (a connection cut midway, Range ignored, redirects)."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

_RANGE = re.compile(r"bytes=(\d+)-")
WRITE_BYTES = 256 * 1024


@dataclass
class Behaviour:
    """What the server does; tests change it between pulls."""

    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    cut_at: int | None = None  # the next `cuts` responses end after this many bytes
    cuts: int = 0
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return None  # quiet tests

    def do_GET(self) -> None:
        behaviour = self.server.behaviour
        requested_range = self.headers.get("Range")
        behaviour.requests.append((self.path, requested_range))
        if self.path in behaviour.redirects:
            self.send_response(302)
            self.send_header("Location", behaviour.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = behaviour.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        match = _RANGE.fullmatch(requested_range or "")
        start = int(match[1]) if match and not behaviour.ignore_range else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        end = len(data)
        if behaviour.cuts > 0 and behaviour.cut_at is not None:
            behaviour.cuts -= 1
            end = min(end, start + behaviour.cut_at)
            self.close_connection = True
        for offset in range(start, end, WRITE_BYTES):
            self.wfile.write(data[offset : min(end, offset + WRITE_BYTES)])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that stops reading mid-file (a pull cancelled, a size limit hit) is
        # what several tests do on purpose: no traceback on stderr for it.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class FileServer:
    url: str
    behaviour: Behaviour

    def file_url(self, path: str) -> str:
        return self.url + path


@contextmanager
def file_server() -> Iterator[FileServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = Behaviour()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(f"http://127.0.0.1:{server.server_address[1]}", server.behaviour)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def small_gguf(path: Path, *, megabytes: int = 3) -> bytes:
    """A small real GGUF file (a header and one tensor of zeros), for the tests where
    the model's contents do not matter; returns its bytes."""
    writer = GGUFWriter(path, "llama")
    writer.add_name("tiny")
    writer.add_context_length(128)
    writer.add_tensor("zeros", np.zeros(megabytes * 1024 * 256, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()
