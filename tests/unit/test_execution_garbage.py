"""An execution leaves no cyclic garbage, and the server's heap settles after start-up.

graphql-core's executor refers to itself through its `async_helpers`; api/execution.py
breaks that cycle, so a read is freed by reference counting instead of waiting for
(and paying for) the cyclic collector.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from llamaql.api.execution import PlainLeafExecutionContext, _helpers_of
from llamaql.api.schema import build_schema
from llamaql.config import ApiConfig
from llamaql.web.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """What the collector finds unreachable while the test runs (kept, not freed)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_an_execution_is_freed_without_the_cyclic_collector(
    saved_garbage: list[object],
) -> None:
    schema = build_schema(ApiConfig())
    result = asyncio.run(schema.execute("query Probe { __typename }", operation_name="Probe"))
    assert result.errors is None
    assert result.data == {"__typename": "Query"}
    gc.collect()
    left = [o for o in saved_garbage if isinstance(o, PlainLeafExecutionContext)]
    assert left == []


def test_the_async_helpers_reach_a_live_executor_only() -> None:
    class Executor:
        def gather_async_work(self, values: list[Any]) -> Any:
            return ("gathered", values)

        def track_async_work(self, values: list[Any]) -> None:
            self.tracked = values

    executor = Executor()
    helpers = _helpers_of(weakref.ref(executor))  # type: ignore[arg-type]
    gathered: Any = helpers.gather([])
    assert gathered == ("gathered", [])
    helpers.track([3])
    assert executor.tracked == [3]
    del executor
    with pytest.raises(RuntimeError, match="after their execution ended"):
        helpers.track([4])


def test_the_heap_settles_frozen_with_a_larger_first_threshold() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
