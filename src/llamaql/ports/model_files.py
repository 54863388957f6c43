"""The models folder as the pull and delete use cases see it: what a pull asks for, how
its progress is reported, and the ports the folder's adapter and the engine implement."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from llamaql.ports.errors import BadInputError

REPLACE_HINT = "pass --force to `llamaql pull`, or replace: true to pullModel"


def model_exists_error(name: str) -> BadInputError:
    """A pull that would overwrite a model without being asked to."""
    return BadInputError(f"a model named {name!r} exists; {REPLACE_HINT}")


@dataclass(frozen=True, slots=True)
class PullSource:
    """One model to download: from `url` (http or https, already resolved) into the
    folder as `<name>.gguf`; `sha256` (lowercase hex) is checked when given; `replace`
    allows overwriting a model of that name."""

    url: str
    name: str
    sha256: str | None = None
    replace: bool = False


class PullListener(Protocol):
    """What a download reports while it runs (from the download's own thread)."""

    def downloaded(self, done: int, total: int | None) -> None:
        """`done` bytes are in the temporary file; `total` is None while unknown."""

    def verifying(self) -> None:
        """Every byte is in; the checksum and the GGUF header are being checked."""


class ModelFiles(Protocol):
    """The models folder (LLAMAQL_MODELS_DIR): its adapter downloads, checks and
    installs GGUF files, and removes them. Names passed here passed `is_model_name`;
    the adapter checks them again before it touches a path."""

    def has_model(self, name: str) -> bool:
        """Whether a model of this name is in the folder."""
        ...

    def pull(
        self, source: PullSource, listener: PullListener, cancelled: Callable[[], bool]
    ) -> None:
        """Download `source` to a temporary file in the folder (resuming with HTTP Range
        after an interruption), check it, then rename it to `<name>.gguf`. Blocking: run
        it off the event loop. Raises DomainError with the failure's code; nothing is
        left behind on failure or when `cancelled()` turns true."""
        ...

    def delete(self, name: str) -> None:
        """Remove the model's file (every part of a split model); NotFoundError when the
        folder has no model of this name."""
        ...


@runtime_checkable
class ModelsInUse(Protocol):
    """The hook the engine's model registry implements so that a model it has loaded,
    or has replies queued for, is not deleted under it."""

    def check_deletable(self, name: str) -> None:
        """Raise DomainError (with the reason) when `name` must not be deleted now."""
        ...


class NothingLoaded:
    """ModelsInUse for a server whose engine loads no model from the folder."""

    def check_deletable(self, name: str) -> None:
        return None


class PullState(StrEnum):
    DOWNLOADING = "DOWNLOADING"
    VERIFYING = "VERIFYING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


TERMINAL_PULL_STATES = frozenset({PullState.COMPLETE, PullState.FAILED})


@dataclass(frozen=True, slots=True)
class PullFailure:
    """Why a pull failed: a contract error code and a message for the one who asked."""

    code: str
    message: str
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One pull as it stands: bytes in the temporary file, the total when known, the
    recent rate (bytes per second), its state and, once FAILED, why."""

    pull_id: uuid.UUID
    name: str
    url: str
    state: PullState
    bytes_done: int = 0
    total_bytes: int | None = None
    bytes_per_second: float = 0.0
    failure: PullFailure | None = None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_PULL_STATES
