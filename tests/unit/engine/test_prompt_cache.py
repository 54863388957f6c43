"""The LRU of KV snapshots: longest-prefix lookup, byte bound, eviction order."""

from __future__ import annotations

import pytest

from llamaql.engine.prompt_cache import PromptCache, Snapshot, common_prefix


def snap(tokens: list[int], nbytes: int = 100) -> Snapshot:
    return Snapshot(tuple(tokens), bytearray(nbytes))


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], (1, 2, 4, 5)) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_best_match_is_the_longest_shared_prefix() -> None:
    cache = PromptCache(1000)
    short, long = snap([1, 2, 9]), snap([1, 2, 3, 4, 8])
    cache.put(short)
    cache.put(long)
    assert cache.best_match([1, 2, 3, 4, 5]) == (long, 4)
    assert cache.best_match([1, 2, 9, 9]) == (short, 3)
    assert cache.best_match([7]) is None


def test_eviction_keeps_within_the_byte_bound_least_recently_used_first() -> None:
    cache = PromptCache(250)
    a, b, c = snap([1], 100), snap([2], 100), snap([3], 100)
    assert cache.put(a)
    assert cache.put(b)
    cache.touch(a)  # b is now the least recently used
    assert cache.put(c)
    assert cache.nbytes == 200 <= cache.capacity
    assert cache.best_match([2]) is None  # b went
    assert cache.best_match([1]) == (a, 1)
    assert cache.best_match([3]) == (c, 1)
    big = snap([4], 240)
    assert cache.put(big)  # evicts both older ones to fit
    assert len(cache) == 1
    assert cache.nbytes == 240


def test_a_snapshot_larger_than_the_cache_is_refused() -> None:
    cache = PromptCache(250)
    kept = snap([1], 100)
    cache.put(kept)
    assert not cache.put(snap([2], 251))
    assert len(cache) == 1
    assert cache.nbytes == 100


def test_a_longer_snapshot_replaces_the_ones_it_extends() -> None:
    cache = PromptCache(1000)
    cache.put(snap([1, 2]))
    cache.put(snap([1, 3]))
    assert cache.covers([1, 2])
    assert cache.covers([1])
    assert not cache.covers([1, 2, 3])
    longer = snap([1, 2, 3], 150)
    cache.put(longer)
    assert len(cache) == 2
    assert cache.nbytes == 250
    assert cache.covers([1, 2])


def test_discard_and_clear() -> None:
    cache = PromptCache(1000)
    a = snap([1])
    cache.put(a)
    cache.put(snap([2]))
    cache.discard(a)
    assert len(cache) == 1
    assert cache.nbytes == 100
    cache.clear()
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="got 0 bytes"):
        PromptCache(0)
