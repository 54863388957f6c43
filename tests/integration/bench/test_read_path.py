"""bench.read_path at its smallest, so the in-process read profile cannot rot: every
read answered alike by llamaql and the bare endpoint, each side's CPU reported. No
timing is asserted."""

from __future__ import annotations

import argparse
import asyncio

from bench.loadgen import READS
from bench.read_path import main_async


def test_read_path_runs_every_read_on_both_sides() -> None:
    args = argparse.Namespace(read=list(READS), requests=4, concurrency=2, rounds=1, cprofile=None)
    figures = asyncio.run(main_async(args))
    assert set(figures) == set(READS)
    for read, figure in figures.items():
        assert figure["same_answer"], read
        assert set(figure["cpu_ms_per_request"]) == {"llamaql", "bare"}
        assert all(len(rounds) == 1 for rounds in figure["rounds_ms"].values())
