"""ModelFiles in memory: a pull that reports the bytes a test lets through, then installs
a model or fails as scripted; held to the same rules as the folder (a valid name, no
overwrite unless asked, nothing left behind)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from llamaql.ports.errors import DomainError, NotFoundError
from llamaql.ports.model_files import PullListener, PullSource, model_exists_error
from llamaql.ports.model_names import is_model_name


class FakeModelFiles:
    def __init__(self, *models: str, size: int = 1000, step: int = 250) -> None:
        self.models = set(models)
        self.size, self.step = size, step
        self.fail_with: DomainError | None = None
        self.pulled: list[PullSource] = []
        # A test sets `gate` to hold a pull between steps until it sets the event.
        self.gate: threading.Event | None = None

    def has_model(self, name: str) -> bool:
        return name in self.models

    def pull(
        self, source: PullSource, listener: PullListener, cancelled: Callable[[], bool]
    ) -> None:
        assert is_model_name(source.name)
        if not source.replace and source.name in self.models:
            raise model_exists_error(source.name)
        self.pulled.append(source)
        for done in range(self.step, self.size + 1, self.step):
            if self.gate is not None:
                self.gate.wait(timeout=30)
            if cancelled():
                raise DomainError("the pull was cancelled", code="SERVICE_UNAVAILABLE")
            listener.downloaded(done, self.size)
        listener.verifying()
        if self.fail_with is not None:
            raise self.fail_with
        self.models.add(source.name)

    def delete(self, name: str) -> None:
        if name not in self.models:
            raise NotFoundError(f"no model named {name!r}")
        self.models.remove(name)
