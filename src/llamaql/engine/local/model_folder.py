"""The models folder (LLAMAQL_MODELS_DIR) as the pull and delete use cases need it: the
`ModelFiles` adapter.

A pull writes `.<name>.gguf.part` in the folder itself (a name no catalog lists: it
starts with a dot and does not end in .gguf), so the final rename never crosses a file
system. The part file is locked (flock) while a pull writes it: a second pull of the
same name, from this server or from `llamaql pull`, is refused instead of interleaving.
The file becomes `<name>.gguf` only after its SHA-256 (when given) and its GGUF header
check; a pull that fails for any reason removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from llamaql.engine.local.downloads import DownloadLimits, download
from llamaql.engine.local.metadata import read_gguf_metadata
from llamaql.ports.engine import ModelFileError
from llamaql.ports.errors import BadInputError, DomainError, NotFoundError
from llamaql.ports.model_files import PullListener, PullSource, model_exists_error
from llamaql.ports.model_names import GGUF_SUFFIX, is_model_name

logger = logging.getLogger(__name__)


class ModelFolder:
    """Downloads, checks, installs and removes the GGUF files of one folder."""

    def __init__(self, folder: Path, limits: DownloadLimits) -> None:
        self.folder = folder
        self.limits = limits

    def path_of(self, name: str) -> Path:
        """`<folder>/<name>.gguf`, for a valid name only (never a path out of the folder)."""
        if not is_model_name(name):
            raise BadInputError(
                f"{name!r} is not a model name: letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, at most 128 characters"
            )
        path = self.folder / f"{name}{GGUF_SUFFIX}"
        if path.parent != self.folder:  # belt and braces: the name has no separator
            raise BadInputError(f"{name!r} is not a model name")
        return path

    def has_model(self, name: str) -> bool:
        return bool(self._files_of(name))

    def pull(
        self, source: PullSource, listener: PullListener, cancelled: Callable[[], bool]
    ) -> None:
        target = self.path_of(source.name)
        self._refuse_existing(source)
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f".{source.name}{GGUF_SUFFIX}.part"
        with _locked_part(part, source.name) as file:
            try:
                digest = download(
                    source.url,
                    file,
                    limits=self.limits,
                    on_bytes=listener.downloaded,
                    cancelled=cancelled,
                )
                file.flush()
                os.fsync(file.fileno())
                listener.verifying()
                _verify(part, source, digest)
                self._install(part, target, source)
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise DomainError(f"could not write {source.name}: {exc.strerror}") from exc
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        logger.info("pulled %s from %s into %s", source.name, source.url, target)

    def delete(self, name: str) -> None:
        self.path_of(name)
        files = self._files_of(name)
        if not files:
            raise NotFoundError(f"no model named {name!r} in {self.folder}")
        for path in files:
            path.unlink(missing_ok=True)
        logger.info("deleted model %s (%s)", name, ", ".join(p.name for p in files))

    def _files_of(self, name: str) -> list[Path]:
        """The model's file, or every part of a split model (`<name>-0000k-of-0000n`)."""
        single = self.path_of(name)
        if single.is_file():
            return [single]
        # A valid name holds no glob character, so it is matched literally.
        return sorted(p for p in self.folder.glob(f"{name}-*-of-*{GGUF_SUFFIX}") if p.is_file())

    def _refuse_existing(self, source: PullSource) -> None:
        if not source.replace and self.has_model(source.name):
            raise model_exists_error(source.name)

    def _install(self, part: Path, target: Path, source: PullSource) -> None:
        if source.replace:
            os.replace(part, target)
            return
        try:
            os.link(part, target)  # fails, atomically, if the name was taken meanwhile
        except FileExistsError:
            raise model_exists_error(source.name) from None
        part.unlink()


@contextlib.contextmanager
def _locked_part(part: Path, name: str) -> Iterator[BinaryIO]:
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
    file = os.fdopen(fd, "r+b")
    with file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInputError(f"a pull of {name!r} is already running") from None
        # What is there is a crashed pull's leftover (a live one would hold the lock).
        file.truncate(0)
        yield file


def _verify(part: Path, source: PullSource, digest: str) -> None:
    if source.sha256 is not None and digest != source.sha256:
        raise BadInputError(f"sha256 mismatch: expected {source.sha256}, got {digest}")
    try:
        read_gguf_metadata(part)
    except ModelFileError as exc:
        reason = str(exc).replace(str(part), "the download")
        raise BadInputError(f"{source.url} is not a usable GGUF model: {reason}") from exc
