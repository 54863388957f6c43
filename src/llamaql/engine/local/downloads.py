"""Download one file over HTTP(S) into an open file, resuming after an interruption.

Blocking (sync httpx), meant for a thread of its own: a multi-gigabyte model must not
cost the event loop its writes and its SHA-256. Redirects are followed here, not by
httpx, so each hop's scheme is checked (http and https only) and counted. After a
dropped connection, a timeout, a 429 or a 5xx the download waits (doubling pauses) and
asks for the rest with `Range: bytes=<done>-`, with `If-Range` when the server gave an
ETag or Last-Modified; a server that answers 200 instead starts the file over.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from llamaql.ports.errors import BadInputError, DomainError

logger = logging.getLogger(__name__)

GGUF_MAGIC_BYTES = b"GGUF"
CHUNK_BYTES = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class DownloadLimits:
    """How far a download may go: its size, its redirects, its retries and their pauses."""

    max_bytes: int
    max_redirects: int = 5
    attempts: int = 5
    first_pause_s: float = 0.5
    connect_timeout_s: float = 30.0
    read_timeout_s: float = 60.0


class _Retry(Exception):
    """This attempt failed in a way another attempt may not (the message says how)."""


class _Cancelled(Exception):
    pass


@dataclass
class _Progress:
    """What is in the file so far, and what the server said about the whole."""

    file: BinaryIO
    on_bytes: Callable[[int, int | None], None]
    done: int = 0
    total: int | None = None
    validator: str | None = None  # ETag or Last-Modified, for If-Range
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)

    def restart(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.done, self.hasher = 0, hashlib.sha256()


def download(
    url: str,
    file: BinaryIO,
    *,
    limits: DownloadLimits,
    on_bytes: Callable[[int, int | None], None],
    cancelled: Callable[[], bool],
) -> str:
    """Write `url`'s body into `file` (empty, opened for writing) and return its SHA-256
    (hex). Raises DomainError: BAD_USER_INPUT for what retrying will not fix (a 404, a
    redirect to another scheme, a body over the limit, not a GGUF file),
    SERVICE_UNAVAILABLE (retryable) when every attempt failed; `_Cancelled` is turned
    into SERVICE_UNAVAILABLE too."""
    progress = _Progress(file, on_bytes)
    timeout = httpx.Timeout(limits.read_timeout_s, connect=limits.connect_timeout_s)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for attempt in range(1, limits.attempts + 1):
            try:
                _attempt(client, url, progress, limits, cancelled)
                return progress.hasher.hexdigest()
            except _Cancelled:
                raise DomainError("the pull was cancelled", code="SERVICE_UNAVAILABLE") from None
            except (_Retry, httpx.TransportError) as exc:
                if attempt == limits.attempts:
                    raise DomainError(
                        f"downloading {url} failed {attempt} times; the last: {_reason(exc)}",
                        code="SERVICE_UNAVAILABLE",
                        retryable=True,
                    ) from exc
                pause = limits.first_pause_s * 2 ** (attempt - 1)
                logger.warning(
                    "pull of %s: %s; retrying from byte %d in %.1f s",
                    url, _reason(exc), progress.done, pause,
                )  # fmt: skip
                _sleep(pause, cancelled)
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _sleep(seconds: float, cancelled: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if cancelled():
            raise DomainError("the pull was cancelled", code="SERVICE_UNAVAILABLE")
        time.sleep(min(left, 0.1))


def _attempt(
    client: httpx.Client,
    url: str,
    progress: _Progress,
    limits: DownloadLimits,
    cancelled: Callable[[], bool],
) -> None:
    headers = {"Accept-Encoding": "identity"}
    if progress.done:
        headers["Range"] = f"bytes={progress.done}-"
        if progress.validator:
            headers["If-Range"] = progress.validator
    response = _follow(client, url, headers, limits.max_redirects)
    try:
        if not _take_status(response, progress, url):
            return  # 416 for a file already whole
        if progress.total is not None and progress.total > limits.max_bytes:
            raise _too_big(limits)
        for chunk in response.iter_bytes(CHUNK_BYTES):
            if cancelled():
                raise _Cancelled
            _write(progress, chunk, limits)
        if progress.total is not None and progress.done < progress.total:
            raise _Retry(f"the connection ended at byte {progress.done} of {progress.total}")
    finally:
        response.close()


def _follow(
    client: httpx.Client, url: str, headers: dict[str, str], max_redirects: int
) -> httpx.Response:
    """The response of the last hop, its body not read yet."""
    for _ in range(max_redirects + 1):
        response = client.send(client.build_request("GET", url, headers=headers), stream=True)
        if not response.is_redirect:
            return response
        response.close()
        target = urljoin(url, response.headers["location"])
        if urlsplit(target).scheme not in ("http", "https"):
            raise BadInputError(f"{url} redirects to {target}: only http and https are fetched")
        url = target
    raise BadInputError(f"more than {max_redirects} redirects")


def _take_status(response: httpx.Response, progress: _Progress, url: str) -> bool:
    """Read the status and headers into `progress`; False when nothing is left to read."""
    status = response.status_code
    progress.validator = response.headers.get("etag") or response.headers.get("last-modified")
    if status == 200:
        if progress.done:
            logger.info("pull of %s: the server ignored Range; starting over", url)
            progress.restart()
        length = response.headers.get("content-length")
        progress.total = int(length) if length and length.isdigit() else None
        return True
    if status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        if match is None or int(match[1]) != progress.done:
            progress.restart()
            raise _Retry(f"the server sent a range that does not start at {progress.done}")
        progress.total = int(match[3]) if match[3] != "*" else None
        return True
    if status == 416 and progress.total is not None and progress.done == progress.total:
        return False
    if status == 416:
        progress.restart()
        raise _Retry("the server refused the range; starting over")
    if status in _RETRY_STATUSES:
        raise _Retry(f"the server answered {status} {response.reason_phrase}")
    raise BadInputError(f"{url} answered {status} {response.reason_phrase}")


def _write(progress: _Progress, chunk: bytes, limits: DownloadLimits) -> None:
    # An HTML error page or the wrong file is refused at its first bytes, not its last.
    if progress.done == 0 and not chunk.startswith(GGUF_MAGIC_BYTES[: len(chunk)]):
        raise BadInputError("the file is not a GGUF model (it does not start with GGUF)")
    if progress.done + len(chunk) > limits.max_bytes:
        raise _too_big(limits)
    progress.file.write(chunk)
    progress.hasher.update(chunk)
    progress.done += len(chunk)
    progress.on_bytes(progress.done, progress.total)


def _too_big(limits: DownloadLimits) -> BadInputError:
    return BadInputError(
        f"the file is larger than LLAMAQL_MODEL_MAX_BYTES ({limits.max_bytes} bytes)"
    )
