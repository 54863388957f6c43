"""KV states on disk: a conversation's next turn after a restart evaluates only new tokens.

One file per conversation (`Requester`) and model in `LLAMAQL_KV_DIR`, named by the
SHA-256 of that key, so the folder's listing names no user or conversation. A file is

    b"LQKV" | version (u32) | header size (u32) | header (JSON) | tokens (i32 each) | state

The header holds the full key (the store's identity: the model file's checksum and the
llama.cpp state format; the user; the conversation), the token and state sizes, and the
SHA-256 of tokens and state together. A file whose key, sizes or checksum do not match
is deleted, never loaded: a corrupt, truncated or foreign file (another model, user,
conversation or context) costs one read. Files are written atomically (a temporary file,
fsync, rename, fsync of the folder); the least recently used (written or read, by mtime)
go first once the folder is over its budget. The folder is private (0700) and so are the
files (0600): a file's tokens are its conversation's text.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import struct
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

from llamaql.engine.local.parking import ParkedState
from llamaql.ports.engine import Requester

logger = logging.getLogger(__name__)

MAGIC = b"LQKV"
VERSION = 1
SUFFIX = ".kv"
_PREFIX = struct.Struct("<4sII")  # magic, version, header size
_MAX_HEADER = 64 * 1024
_SAMPLE = 1024 * 1024  # bytes of a model file's head and tail in its checksum
_STALE_TMP_S = 600.0  # a temporary file this old was left by a crash


def model_checksum(path: Path) -> str:
    """A cheap identity of a model file: SHA-256 of its size, modification time and
    first and last MiB. Reading a multi-GB model in full would add seconds to every
    start; the head holds the GGUF's metadata and tensor layout, the tail the last
    weights, and any rewrite of the file changes its modification time."""
    stat = path.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as model:
        digest.update(model.read(_SAMPLE))
        model.seek(max(0, stat.st_size - _SAMPLE))
        digest.update(model.read(_SAMPLE))
    return digest.hexdigest()


def _tokens_bytes(tokens: tuple[int, ...]) -> bytes:
    packed = array("i", tokens)  # llama_token is a 32-bit int
    if sys.byteorder != "little":  # pragma: no cover - files are little-endian
        packed.byteswap()
    return packed.tobytes()


def _tokens_from(raw: bytes) -> tuple[int, ...]:
    tokens = array("i")
    tokens.frombytes(raw)
    if sys.byteorder != "little":  # pragma: no cover
        tokens.byteswap()
    return tuple(tokens)


class KVFileStore:
    """The files of one model and context in one folder, within `capacity` bytes.

    `write` and `delete` may run on one thread while `read` runs on another: a reader
    has the file it opened even when it is replaced or evicted meanwhile.
    """

    def __init__(self, directory: Path, capacity: int, identity: str) -> None:
        if capacity < 0:
            raise ValueError(f"KV disk budget must not be negative, got {capacity} bytes")
        self.directory = directory
        self.capacity = capacity
        self.identity = identity

    def open(self) -> None:
        """Create the folder (private), remove temporary files a crash left, and evict
        down to the budget (it may have been lowered since the last run)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = time.time()
        for entry in os.scandir(self.directory):
            with contextlib.suppress(FileNotFoundError):
                if entry.name.endswith(".tmp") and now - entry.stat().st_mtime > _STALE_TMP_S:
                    _unlink(Path(entry.path))
        self._evict(keep=None)

    def path(self, owner: Requester) -> Path:
        key = json.dumps([self.identity, owner.user, owner.conversation])
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + SUFFIX)

    def _header(self, owner: Requester) -> dict[str, Any]:
        return {"identity": self.identity, "user": owner.user, "conversation": owner.conversation}

    def write(self, owner: Requester, parked: ParkedState) -> bool:
        """Store `owner`'s state, replacing any older one; False (nothing written) when
        it alone exceeds the budget or the disk refuses it."""
        tokens = _tokens_bytes(parked.tokens)
        digest = hashlib.sha256(tokens)
        digest.update(parked.state)
        header = self._header(owner) | {
            "tokens": len(parked.tokens),
            "state_bytes": parked.nbytes,
            "sha256": digest.hexdigest(),
        }
        encoded = json.dumps(header).encode()
        if len(encoded) > _MAX_HEADER:  # ids this long are not ids: nothing would read it
            return False
        if _PREFIX.size + len(encoded) + len(tokens) + parked.nbytes > self.capacity:
            logger.debug("a %d-byte KV state exceeds the KV disk budget", parked.nbytes)
            return False
        target = self.path(owner)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(_PREFIX.pack(MAGIC, VERSION, len(encoded)))
                    out.write(encoded)
                    out.write(tokens)
                    out.write(parked.state)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                _unlink(Path(tmp))
                raise
            self._sync_directory()
        except OSError as exc:
            logger.warning("could not write a KV file in %s: %s", self.directory, exc)
            return False
        self._evict(keep=target)
        return True

    def read(self, owner: Requester) -> ParkedState | None:
        """`owner`'s state if its file is whole and theirs; a file that is not is deleted."""
        target = self.path(owner)
        try:
            source = target.open("rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("could not open a KV file: %s", exc)
            return None
        with source:
            try:
                parked = self._parse(source, owner)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                parked = None
                logger.warning("deleted an unusable KV file %s: %s", target.name, exc)
            if parked is None:
                _unlink_if_same(target, source)
                return None
        with contextlib.suppress(OSError):
            os.utime(target)  # recently used: the last to be evicted
        logger.debug("read %d tokens of KV from %s", len(parked.tokens), target.name)
        return parked

    def _parse(self, source: io.BufferedReader, owner: Requester) -> ParkedState:
        prefix = source.read(_PREFIX.size)
        if len(prefix) != _PREFIX.size:
            raise ValueError("truncated before its header")
        magic, version, header_size = _PREFIX.unpack(prefix)
        if magic != MAGIC or version != VERSION or header_size > _MAX_HEADER:
            raise ValueError(f"not a version {VERSION} KV file")
        header = json.loads(source.read(header_size))
        expected = self._header(owner)
        if not isinstance(header, dict) or any(header.get(k) != v for k, v in expected.items()):
            raise ValueError("another model, context, user or conversation")
        n_tokens, n_state = int(header["tokens"]), int(header["state_bytes"])
        rest = os.fstat(source.fileno()).st_size - source.tell()
        if rest != 4 * n_tokens + n_state:
            raise ValueError(f"{rest} bytes after the header, expected {4 * n_tokens + n_state}")
        raw_tokens = source.read(4 * n_tokens)
        state = bytearray(n_state)
        if len(raw_tokens) != 4 * n_tokens or source.readinto(state) != n_state:
            raise ValueError("truncated")
        digest = hashlib.sha256(raw_tokens)
        digest.update(state)
        if digest.hexdigest() != header["sha256"]:
            raise ValueError("checksum mismatch")
        return ParkedState(_tokens_from(raw_tokens), state)

    def delete(self, owner: Requester) -> None:
        _unlink(self.path(owner))

    def files(self) -> list[Path]:
        """The KV files in the folder, least recently used first."""
        return [path for path, _ in self._listing()]

    def _listing(self) -> list[tuple[Path, os.stat_result]]:
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.directory):
                if entry.name.endswith(SUFFIX):
                    with contextlib.suppress(FileNotFoundError):
                        found.append((Path(entry.path), entry.stat()))
        found.sort(key=lambda item: item[1].st_mtime_ns)
        return found

    def _evict(self, *, keep: Path | None) -> None:
        listing = self._listing()
        used = sum(stat.st_size for _, stat in listing)
        for path, stat in listing:
            if used <= self.capacity:
                break
            if path != keep:
                _unlink(path)
                used -= stat.st_size
                logger.debug("evicted KV file %s over the disk budget", path.name)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _unlink_if_same(path: Path, opened: io.BufferedReader) -> None:
    """Delete `path` unless a writer has meanwhile renamed a new file over it."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == os.fstat(opened.fileno()).st_ino:
            path.unlink()
