"""`make reliability` at its smallest size, so the suite cannot rot as the server changes.

It runs `python -m bench.reliability --size small` against real `llamaql serve`
processes, real WebSockets and real SQLite files, and passes only when every figure met
its bounds (the suite's exit status). Timing bounds are recorded but not enforced at
this size; the behaviour checks (served or QUEUE_FULL, one reply per message, the kill
keeps checkpointed text, bounded memory, no INTERNAL under fuzz, no query served over
the cost limit, trickled headers closed, one user held to their share of the engine) are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llamaql.config import DEFAULT_MODEL_FILE

REPO_ROOT = Path(__file__).resolve().parents[3]
MODEL = REPO_ROOT / "models" / DEFAULT_MODEL_FILE
TIMEOUT_S = 900
FIGURES = {"load", "kill", "memory", "slow_reader", "fuzz", "cost", "headers", "hog"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.model,
    pytest.mark.skipif(not MODEL.is_file(), reason=f"{MODEL} missing: run `make model`"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("reliability")
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLAMAQL_")}
    # A small context keeps each server's start-up and KV memory small on a test machine.
    env.update(LLAMAQL_MODEL_PATH=str(MODEL), LLAMAQL_CONTEXT_SIZE="1024")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.reliability",
            *sorted(FIGURES),  # db_outage needs PostgreSQL: test_db_outage_smoke.py runs it
            "--size",
            "small",
            "--results-dir",
            str(out),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    result = out / "reliability.json"
    if not result.is_file():
        pytest.fail(f"no {result.name} (exit {done.returncode}):\n{done.stderr[-4000:]}")
    document = json.loads(result.read_text())
    return done.returncode, done.stdout + done.stderr, document


def test_every_figure_meets_its_bounds(run: tuple[int, str, dict[str, Any]]) -> None:
    returncode, output, document = run
    failed = [f for f in document["figures"] if not f["ok"]]
    assert not failed, f"{json.dumps(failed, indent=1)}\n{output[-3000:]}"
    assert returncode == 0, output[-3000:]


def test_every_figure_ran_and_printed_its_table(run: tuple[int, str, dict[str, Any]]) -> None:
    _, output, document = run
    assert {f["figure"] for f in document["figures"]} == FIGURES
    assert document["size"] == "small"
    for figure in document["figures"]:
        assert figure["checks"], f"{figure['figure']} checked nothing"
        assert f"| {figure['figure']} |" in output


def test_the_figures_measured_what_they_claim(run: tuple[int, str, dict[str, Any]]) -> None:
    figures = {f["figure"]: f["values"] for f in run[2]["figures"]}
    load = figures["load"]
    assert load["served"] >= 1
    assert load["refused_queue_full"] >= 1
    assert load["stored_user_messages"] == load["served"]
    assert all(0 < kept <= 1 for kept in figures["kill"]["kept_of_shown"])
    assert figures["memory"]["rss_mb_after_total"] > 0
    assert figures["slow_reader"]["never_read"]["completed"] >= 1
    assert sum(figures["fuzz"]["documents"].values()) >= 1
    assert figures["cost"]["outcomes"]["served"] >= 1
    assert figures["cost"]["most_items_served"] > 20
    assert figures["headers"]["answered_408"] == figures["headers"]["closed"] >= 1
    hog = figures["hog"]
    assert hog["hog_served"] >= 1
    assert hog["hog_refused_own_limit"] >= 1
    assert len(hog["first_token_under_hog_s"]) >= 1
