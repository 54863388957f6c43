"""The model registry's policy (residency.py) and LocalModels over fake one-model
engines: loading on demand with the loading flag, the least recently used idle model
unloaded for room (never a busy one), idle unloading, failures that leave the others
serving."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.eventually import eventually
from tests.fakes.engine import FakeEngine
from tests.unit.engine.test_model_catalog import write_gguf

from llamaql.config import EngineConfig, load_config
from llamaql.engine.local.core_share import CoreShare
from llamaql.engine.local.models import LocalModels
from llamaql.engine.local.residency import Limits, Resident, idle_expired, never_fits, unloads_for
from llamaql.ports.engine import (
    ChatMessage,
    Engine,
    EngineEvent,
    GenerationHandle,
    GenerationResult,
    ModelUnavailableError,
    QueuePosition,
    Requester,
    SamplingOptions,
    UnknownModelError,
)
from llamaql.ports.errors import ConversationBusyError

MIB = 2**20


def resident(name: str, used: float, *, busy: bool = False, mib: int = 100) -> Resident:
    return Resident(name, mib * MIB, used, busy)


def test_room_comes_from_the_least_recently_used_idle_models() -> None:
    limits = Limits(max_loaded=2, memory_bytes=None, idle_s=0)
    loaded = [resident("a", 5), resident("b", 1), resident("c", 3, busy=True)]
    assert unloads_for(loaded, 10 * MIB, limits) == ["b", "a"]
    assert unloads_for(loaded[:1], 10 * MIB, limits) == []


def test_busy_models_are_never_unloaded_so_the_load_waits() -> None:
    limits = Limits(max_loaded=1, memory_bytes=None, idle_s=0)
    assert unloads_for([resident("a", 1, busy=True)], MIB, limits) is None


def test_memory_limit_unloads_until_the_new_model_fits() -> None:
    limits = Limits(max_loaded=8, memory_bytes=250 * MIB, idle_s=0)
    loaded = [resident("a", 1), resident("b", 2)]
    assert unloads_for(loaded, 100 * MIB, limits) == ["a"]
    assert never_fits(100 * MIB, limits) is None
    reason = never_fits(300 * MIB, limits)
    assert reason is not None
    assert "300 MiB" in reason


def test_idle_models_expire_after_idle_seconds_and_never_with_zero() -> None:
    loaded = [resident("a", 0), resident("b", 9), resident("c", 0, busy=True)]
    assert idle_expired(loaded, 10, Limits(2, None, idle_s=5)) == ["a"]
    assert idle_expired(loaded, 10, Limits(2, None, idle_s=0)) == []


class GatedEngine(FakeEngine):
    """A fake one-model engine whose start waits for `gate` and may fail."""

    def __init__(self, name: str, gate: asyncio.Event, fail: bool) -> None:
        super().__init__()
        self.name = name
        self.gate = gate
        self.fail = fail
        self.stopped = False

    async def start(self) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("tensor data is corrupt")
        await super().start()

    async def stop(self) -> None:
        self.stopped = True
        await super().stop()


class Rig:
    def __init__(self, folder: Path, **settings: object) -> None:
        self.folder = folder
        for name in ("a", "b", "c", "broken"):
            write_gguf(folder / f"{name}.gguf")
        config = load_config(models_dir=folder, model_path=folder / "a.gguf", **settings)
        self.gates: dict[str, asyncio.Event] = {}
        self.made: list[GatedEngine] = []
        self.now = 0.0
        self.models = LocalModels(config.engine, engine_factory=self.make, clock=lambda: self.now)

    def make(self, config: EngineConfig, cores: CoreShare) -> Engine:
        name = config.model_path.stem
        gate = self.gates.setdefault(name, asyncio.Event())
        if name == "a":
            gate.set()
        engine = GatedEngine(name, gate, fail=name == "broken")
        self.made.append(engine)
        return engine

    def loaded(self) -> tuple[str, ...]:
        return tuple(sorted(self.models.loaded_models()))

    async def submit(self, model: str, conversation: str = "c1") -> GenerationHandle:
        messages = [ChatMessage("user", "hi")]
        prompt = await self.models.prepare(messages, SamplingOptions(), model=model)
        assert prompt.model == model
        return self.models.submit(prompt, Requester("u", conversation))


async def drain(handle: GenerationHandle) -> list[EngineEvent]:
    return [event async for event in handle.events()]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path / "models", max_loaded_models=2, model_idle_seconds=0)


async def test_the_default_loads_at_start_and_another_on_its_first_request(rig: Rig) -> None:
    await rig.models.start()
    try:
        assert rig.loaded() == ("a",)
        handle = await rig.submit("b")
        events = asyncio.create_task(drain(handle))
        await eventually(lambda: "b" in rig.gates)
        statuses = {s.name: s for s in await rig.models.models()}
        assert statuses["b"].loading
        assert not statuses["b"].loaded
        rig.gates["b"].set()
        seen = await events
        positions = [e for e in seen if isinstance(e, QueuePosition)]
        assert positions[0] == QueuePosition(1, loading=True)
        assert positions[1].loading is False
        assert isinstance(seen[-1], GenerationResult)
        assert rig.loaded() == ("a", "b")
    finally:
        await rig.models.stop()


async def test_a_third_model_unloads_the_least_recently_used_idle_one_never_a_busy_one(
    rig: Rig,
) -> None:
    await rig.models.start()
    try:
        rig.gates["b"] = asyncio.Event()
        rig.gates["b"].set()
        rig.gates["c"] = asyncio.Event()
        rig.gates["c"].set()
        rig.now = 1
        await drain(await rig.submit("b"))  # a (used at 0) is now the least recent
        rig.now = 2
        busy_a = await rig.submit("a")  # ...but busy: b must go instead
        a_engine = rig.made[0]
        a_engine.scripts.clear()
        a_engine.script(paced=True)
        rig.now = 3
        await drain(await rig.submit("c"))
        assert rig.loaded() == ("a", "c")
        rig.now = 4
        busy_a.cancel()
        await drain(busy_a)
        rig.now = 5
        await drain(await rig.submit("c", "c2"))
        # Now a is idle and less recently used than c: loading b again unloads a.
        rig.now = 6
        await drain(await rig.submit("b"))
        assert rig.loaded() == ("b", "c")
        assert a_engine.stopped
    finally:
        await rig.models.stop()


async def test_a_load_waits_while_every_loaded_model_is_busy(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "models", max_loaded_models=1, model_idle_seconds=0)
    await rig.models.start()
    try:
        rig.made[0].script(paced=True)
        busy = await rig.submit("a")
        stream = aiter(busy.events())
        await anext(stream)  # a's reply is live
        rig.gates["b"] = asyncio.Event()
        rig.gates["b"].set()
        waiting = asyncio.create_task(drain(await rig.submit("b")))

        async def status_of_b() -> tuple[bool, bool]:
            status = {s.name: s for s in await rig.models.models()}["b"]
            return status.loading, status.loaded

        assert await eventually(status_of_b) == (True, False)
        assert rig.loaded() == ("a",)  # a is busy: b waits
        busy.cancel()
        assert isinstance([e async for e in stream][-1], GenerationResult)
        seen = await waiting
        assert isinstance(seen[-1], GenerationResult)
        assert rig.loaded() == ("b",)
    finally:
        await rig.models.stop()


async def test_a_failed_load_fails_its_replies_and_the_others_keep_serving(rig: Rig) -> None:
    await rig.models.start()
    try:
        handle = await rig.submit("broken")
        rig.gates["broken"].set()
        with pytest.raises(ModelUnavailableError, match="failed to load: tensor data is corrupt"):
            await drain(handle)
        assert rig.loaded() == ("a",)
        assert isinstance((await drain(await rig.submit("a")))[-1], GenerationResult)
    finally:
        await rig.models.stop()


async def test_unknown_gone_and_too_big_models_are_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path / "models", model_memory_mb=1)
    write_gguf(tmp_path / "models" / "huge.gguf", context=32768)
    await rig.models.start()
    try:
        with pytest.raises(UnknownModelError):
            await rig.models.check_model("nope")
        (tmp_path / "models" / "b.gguf").unlink()
        with pytest.raises(ModelUnavailableError, match="its file is gone"):
            await rig.submit("b")
        with pytest.raises(ModelUnavailableError, match="LLAMAQL_MODEL_MEMORY_MB allows 1 MiB"):
            await rig.submit("huge")
    finally:
        await rig.models.stop()


async def test_a_loaded_model_whose_file_is_gone_is_refused_though_its_engine_rendered(
    rig: Rig,
) -> None:
    await rig.models.start()
    try:
        engine = rig.made[0]
        prompt = await rig.models.prepare([ChatMessage("user", "hi")], SamplingOptions())
        assert (prompt.model, len(engine.prepared_models)) == ("a", 1)
        (rig.folder / "a.gguf").unlink()
        with pytest.raises(ModelUnavailableError, match="its file is gone"):
            await rig.models.prepare([ChatMessage("user", "hi")], SamplingOptions())
        # The loaded engine's render ran beside the catalog's answer; nothing came of it.
        await eventually(lambda: len(engine.prepared_models) == 2)
    finally:
        await rig.models.stop()


async def test_an_idle_model_is_unloaded_after_idle_seconds(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "models", model_idle_seconds=0.2)
    await rig.models.start()
    try:
        rig.gates["b"] = asyncio.Event()
        rig.gates["b"].set()
        await drain(await rig.submit("b"))
        assert rig.loaded() == ("a", "b")
        rig.now = 1.0
        await eventually(lambda: rig.loaded() == ())
    finally:
        await rig.models.stop()


async def test_a_model_with_a_live_or_loading_reply_is_not_deleted(rig: Rig) -> None:
    await rig.models.start()
    try:
        rig.models.check_deletable("a")  # loaded and idle: its weights stay mapped
        rig.models.check_deletable("c")  # not loaded
        handle = await rig.submit("b")
        events = asyncio.create_task(drain(handle))
        await eventually(lambda: "b" in rig.gates)
        with pytest.raises(ConversationBusyError, match="model b is in use"):
            rig.models.check_deletable("b")  # its load is awaited
        rig.gates["b"].set()
        await events
        rig.models.check_deletable("b")  # done: idle again
    finally:
        await rig.models.stop()


async def test_a_reply_announced_to_every_loaded_model_is_withdrawn_from_the_others(
    rig: Rig,
) -> None:
    # expect_reply reaches every loaded model; the reply goes to one. The others must
    # not keep waiting for it (an idle engine gathers announced replies into its first
    # step), and a refused request withdraws from all of them.
    await rig.models.start()
    try:
        handle = await rig.submit("b")
        rig.gates["b"].set()
        await drain(handle)
        a, b = (next(e for e in rig.made if e.name == name) for name in ("a", "b"))
        before = a.replies_abandoned  # the first went to a model still loading: 1
        rig.models.expect_reply()
        await drain(await rig.submit("b"))
        assert (a.replies_abandoned - before, b.replies_abandoned) == (1, 0)
        rig.models.expect_reply()
        rig.models.reply_abandoned()
        assert (a.replies_abandoned - before, b.replies_abandoned) == (2, 1)
    finally:
        await rig.models.stop()
