"""bench.lanes at its smallest, so the engine-alone lanes comparison cannot rot: both
engines answer every reply of a round. No timing is asserted."""

from __future__ import annotations

import asyncio

import pytest
from bench.lanes import run

from llamaql.config import DEFAULT_MODEL_DIR, DEFAULT_MODEL_FILE


def test_lanes_bench_runs_both_sides() -> None:
    if not (DEFAULT_MODEL_DIR / DEFAULT_MODEL_FILE).is_file():
        pytest.skip("the default model is missing: run `make model`")
    figures = asyncio.run(run(replies=2, rounds=1, max_tokens=4))
    rounds = figures["rounds"]
    assert isinstance(rounds, dict)
    assert set(rounds) == {"1", "2"}
    for measured in rounds.values():
        assert len(measured) == 1
        assert measured[0]["tok_s"] > 0
