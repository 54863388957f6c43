"""ModelPullService on a fake models folder: who may pull and delete, the progress a
watcher sees, failures with their code, and the checks made before anything starts."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from tests.fakes.model_files import FakeModelFiles

from llamaql.config import PullConfig
from llamaql.ports.errors import BadInputError, DomainError
from llamaql.ports.model_files import PullProgress, PullState
from llamaql.services.model_pulls import ModelPullService, RateMeter

ADMIN = uuid.UUID("0b5f2c1e-3d4a-4e5f-8a9b-1c2d3e4f5a6b")
OTHER = uuid.UUID("9e8d7c6b-5a49-4382-b716-0f1e2d3c4b5a")
URL = "https://example.com/models/smol.gguf"


class InUse:
    def __init__(self, *names: str) -> None:
        self.names = names

    def check_deletable(self, name: str) -> None:
        if name in self.names:
            raise DomainError(f"{name} is loaded", code="CONVERSATION_BUSY")


def service(files: FakeModelFiles, **kwargs: object) -> ModelPullService:
    config = PullConfig(model_admins=(ADMIN,))
    return ModelPullService(files, config, **kwargs)  # type: ignore[arg-type]


async def watched(pulls: ModelPullService, pull_id: uuid.UUID) -> list[PullProgress]:
    return [progress async for progress in pulls.watch(pull_id)]


async def test_a_pull_reports_its_bytes_to_the_end() -> None:
    files = FakeModelFiles()
    pulls = service(files)
    events = await watched(pulls, pulls.pull_as(ADMIN, URL))
    assert events[0].state == PullState.DOWNLOADING
    assert [e.state for e in events[-2:]] == [PullState.VERIFYING, PullState.COMPLETE]
    assert (events[-1].bytes_done, events[-1].total_bytes) == (1000, 1000)
    assert files.models == {"smol"}


async def test_a_watcher_arriving_after_the_end_sees_the_end() -> None:
    pulls = service(FakeModelFiles())
    pull_id = pulls.start(URL)
    await watched(pulls, pull_id)
    [late] = await watched(pulls, pull_id)
    assert late.state == PullState.COMPLETE


async def test_a_failed_pull_ends_failed_with_its_code() -> None:
    files = FakeModelFiles()
    files.fail_with = BadInputError("sha256 mismatch: expected a, got b")
    pulls = service(files)
    final = (await watched(pulls, pulls.start(URL)))[-1]
    assert final.state == PullState.FAILED
    assert final.failure is not None
    assert (final.failure.code, final.failure.message) == (
        "BAD_USER_INPUT",
        "sha256 mismatch: expected a, got b",
    )
    assert files.models == set()


async def test_an_unexpected_error_is_internal_without_details() -> None:
    files = FakeModelFiles()
    files.fail_with = RuntimeError("secret detail")  # type: ignore[assignment]
    pulls = service(files)
    final = (await watched(pulls, pulls.start(URL)))[-1]
    assert final.failure is not None
    assert final.failure.code == "INTERNAL"
    assert "secret" not in final.failure.message


async def test_only_admins_may_pull_watch_or_delete() -> None:
    files = FakeModelFiles("smol")
    pulls = service(files)
    with pytest.raises(DomainError) as refused:
        pulls.pull_as(OTHER, URL, name="other")
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as refused:
        await pulls.delete_as(OTHER, "smol")
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as refused:
        pulls.watch_as(OTHER, uuid.uuid4())
    assert refused.value.code == "FORBIDDEN"
    assert (files.pulled, files.models) == ([], {"smol"})


async def test_nobody_is_an_admin_by_default() -> None:
    pulls = ModelPullService(FakeModelFiles(), PullConfig())
    with pytest.raises(DomainError) as refused:
        pulls.pull_as(ADMIN, URL)
    assert refused.value.code == "FORBIDDEN"


async def test_an_existing_model_or_a_running_pull_of_the_name_is_refused_at_once() -> None:
    files = FakeModelFiles("smol")
    files.gate = threading.Event()
    pulls = service(files)
    with pytest.raises(BadInputError, match="--force"):
        pulls.start(URL)
    pull_id = pulls.start(URL, name="other")
    with pytest.raises(BadInputError, match="already running"):
        pulls.start(URL, name="other")
    files.gate.set()
    assert (await watched(pulls, pull_id))[-1].state == PullState.COMPLETE
    pulls.start(URL, replace=True)  # asked: it may replace
    await pulls.aclose()


async def test_delete_asks_the_engine_first_and_checks_the_name() -> None:
    files = FakeModelFiles("smol", "busy")
    pulls = service(files, in_use=InUse("busy"))
    with pytest.raises(DomainError, match="busy is loaded"):
        await pulls.delete_as(ADMIN, "busy")
    with pytest.raises(BadInputError):
        await pulls.delete_as(ADMIN, "../smol")
    with pytest.raises(DomainError) as missing:
        await pulls.delete_as(ADMIN, "absent")
    assert missing.value.code == "NOT_FOUND"
    await pulls.delete_as(ADMIN, "smol")
    assert files.models == {"busy"}


async def test_an_unknown_pull_is_not_found() -> None:
    with pytest.raises(DomainError) as missing:
        service(FakeModelFiles()).watch(uuid.uuid4())
    assert missing.value.code == "NOT_FOUND"


async def test_closing_cancels_a_running_pull() -> None:
    files = FakeModelFiles()
    files.gate = threading.Event()
    pulls = service(files)
    pull_id = pulls.start(URL)
    closing = asyncio.create_task(pulls.aclose())
    await asyncio.sleep(0)  # aclose marks the pulls cancelled before its first wait
    files.gate.set()
    await closing
    final = (await watched(pulls, pull_id))[-1]
    assert final.failure is not None
    assert (final.state, final.failure.code) == (PullState.FAILED, "SERVICE_UNAVAILABLE")
    assert files.models == set()


def test_the_rate_is_over_the_last_seconds_and_restarts_with_the_file() -> None:
    meter = RateMeter()
    assert meter.rate(0.0, 0) == 0.0
    assert meter.rate(1.0, 100) == 100.0
    assert meter.rate(2.0, 300) == 150.0
    assert meter.rate(10.0, 400) == pytest.approx(100 / 8)  # older samples fell out
    assert meter.rate(11.0, 50) == 0.0  # the server ignored Range: counting starts over
