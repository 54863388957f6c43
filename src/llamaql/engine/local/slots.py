"""The loaded models of LocalModels: each one's slot, loading it when there is room,
unloading for room or after idleness (the policy's pure rules are residency.py's).

One load or unload runs at a time (`_room`). A load that finds only busy models in the
way waits until a reply ends (`changed`) and tries again; a failed load removes its slot
and fails every reply that waits for it, while the other models keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from llamaql.engine.local.catalog import CatalogModel
from llamaql.engine.local.residency import Limits, Resident, idle_expired, unloads_for
from llamaql.ports.engine import Engine, ModelInfo, ModelUnavailableError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Slot:
    """A model that is loaded, loading or waiting for room."""

    model: CatalogModel
    engine: Engine
    memory_bytes: int
    last_used: float
    live: int = 0  # replies submitted to it (or waiting for it) and not yet ended
    state: str = "waiting"  # waiting (for room), loading, loaded
    ready: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return self.state == "loaded"


class Slots:
    """The slots by model name, and the loads, unloads and idle sweep that change them;
    `clock` is monotonic seconds."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self._limits = limits
        self._clock = clock
        self._slots: dict[str, Slot] = {}
        self._room = asyncio.Lock()  # one load or unload at a time
        self._changed = asyncio.Event()  # a reply ended: room may have freed
        self._sweeper: asyncio.Task[None] | None = None
        self.infos: dict[str, ModelInfo] = {}  # as each model last reported when loaded

    def get(self, name: str) -> Slot | None:
        return self._slots.get(name)

    def loaded(self, name: str) -> Slot | None:
        slot = self._slots.get(name)
        return slot if slot is not None and slot.loaded else None

    def __iter__(self) -> Iterator[Slot]:
        return iter(list(self._slots.values()))

    def add(self, model: CatalogModel, engine: Engine, memory_bytes: int) -> Slot:
        slot = self._slots[model.name] = Slot(model, engine, memory_bytes, self._clock())
        return slot

    def used(self, slot: Slot) -> None:
        """A reply was submitted to the slot's model (or waits for its load)."""
        slot.live += 1
        slot.last_used = self._clock()

    def ended(self, slot: Slot) -> Callable[[], None]:
        """The callback a reply's handle calls once when it ends."""

        def ended() -> None:
            slot.live -= 1
            slot.last_used = self._clock()
            self._changed.set()

        return ended

    def ready(self, slot: Slot) -> asyncio.Task[None]:
        """The slot's load, started now unless it has been."""
        if slot.ready is None:
            slot.ready = asyncio.create_task(self._load(slot))
        return slot.ready

    def start_sweeping(self) -> None:
        if self._limits.idle_s > 0:
            self._sweeper = asyncio.create_task(self._sweep(), name="llamaql-model-sweeper")

    async def stop(self) -> None:
        """Stop the sweep, cancel loads in flight and unload every model."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for slot in list(self._slots.values()):
            if slot.ready is not None and not slot.ready.done():
                slot.ready.cancel()
                with contextlib.suppress(BaseException):
                    await slot.ready
            await self._unload(slot.model.name)

    async def _load(self, slot: Slot) -> None:
        """Make room (unloading idle models; waiting while only busy ones could make
        it), then start the engine; a failure removes the slot and raises
        ModelUnavailableError for every reply that waits."""
        name = slot.model.name
        try:
            while True:
                self._changed.clear()
                async with self._room:
                    others = [
                        s for s in self._slots.values() if s is not slot and s.state != "waiting"
                    ]
                    unloads = unloads_for(
                        [self._resident(s) for s in others], slot.memory_bytes, self._limits
                    )
                    if unloads is not None:
                        for victim in unloads:
                            await self._unload(victim)
                        slot.state = "loading"
                        began = time.perf_counter()
                        await slot.engine.start()
                        slot.state = "loaded"
                        self.infos[name] = replace(slot.engine.info(), name=name)
                        logger.info(
                            "model %s loaded on demand in %.2f s", name, time.perf_counter() - began
                        )
                        return
                await self._changed.wait()
        except Exception as exc:
            self._slots.pop(name, None)
            await slot.engine.stop()
            logger.error("model %s failed to load: %s", name, exc)
            raise ModelUnavailableError(f"model {name!r} failed to load: {exc}") from exc

    def _resident(self, slot: Slot) -> Resident:
        busy = slot.live > 0 or not slot.loaded
        return Resident(slot.model.name, slot.memory_bytes, slot.last_used, busy)

    async def _unload(self, name: str) -> None:
        slot = self._slots.pop(name, None)
        if slot is None:
            return
        logger.info(
            "unloading model %s (last used %.0f s ago)", name, self._clock() - slot.last_used
        )
        await slot.engine.stop()

    async def _sweep(self) -> None:
        """Unload models idle for LLAMAQL_MODEL_IDLE_SECONDS."""
        every = max(0.05, min(self._limits.idle_s / 4, 10.0))
        while True:
            await asyncio.sleep(every)
            async with self._room:
                residents = [self._resident(s) for s in self._slots.values()]
                for name in idle_expired(residents, self._clock(), self._limits):
                    await self._unload(name)
