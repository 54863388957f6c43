"""Which models stay loaded: the registry's policy, as pure functions over what it knows.

A model is loaded on its first request. Room is at most `max_loaded` models and, with a
memory limit, their weights and KV together (estimated from the files before loading).
Room is made by unloading the least recently used models that have no live or queued
reply; a model no idle model can make room for waits, and one that can never fit is
refused. A model idle past `idle_s` is unloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resident:
    """A loaded (or loading) model as the policy sees it."""

    name: str
    memory_bytes: int
    last_used: float  # monotonic seconds of its last request or reply end
    busy: bool  # live or queued replies, or loading


@dataclass(frozen=True, slots=True)
class Limits:
    max_loaded: int
    memory_bytes: int | None  # None: no limit
    idle_s: float  # 0: never unloaded for idleness


def never_fits(need_bytes: int, limits: Limits) -> str | None:
    """Why a model of `need_bytes` can never be loaded under `limits`; None if it can."""
    if limits.memory_bytes is not None and need_bytes > limits.memory_bytes:
        return (
            f"it needs about {need_bytes // 2**20} MiB (weights and KV) and "
            f"LLAMAQL_MODEL_MEMORY_MB allows {limits.memory_bytes // 2**20} MiB"
        )
    return None


def unloads_for(residents: Sequence[Resident], need_bytes: int, limits: Limits) -> list[str] | None:
    """The models to unload (least recently used idle ones first) so that one more model
    of `need_bytes` fits; None when it cannot fit until a busy model goes idle."""
    count = len(residents)
    used = sum(r.memory_bytes for r in residents)

    def fits() -> bool:
        within_memory = limits.memory_bytes is None or used + need_bytes <= limits.memory_bytes
        return count < limits.max_loaded and within_memory

    chosen: list[str] = []
    for resident in sorted((r for r in residents if not r.busy), key=lambda r: r.last_used):
        if fits():
            break
        chosen.append(resident.name)
        count -= 1
        used -= resident.memory_bytes
    return chosen if fits() else None


def idle_expired(residents: Sequence[Resident], now: float, limits: Limits) -> list[str]:
    """The idle models unused for `idle_s` or longer (none when `idle_s` is 0)."""
    if limits.idle_s <= 0:
        return []
    return [r.name for r in residents if not r.busy and now - r.last_used >= limits.idle_s]
