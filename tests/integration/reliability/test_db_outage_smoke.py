"""`make reliability`'s db_outage figure at its smallest size: a real `llamaql serve` on
a private PostgreSQL database behind a TCP proxy that refuses, then relays nothing,
while real replies stream. It passes only when every check of the figure holds (no
INTERNAL, every answer served or coded retryable, /health 503 then 200, the replies in
flight saved as shown, no conversation left busy); its timing bound is recorded but not
enforced at this size. Skipped without LLAMAQL_TEST_POSTGRES_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.integration.postgres import POSTGRES_ENV

from llamaql.config import DEFAULT_MODEL_FILE

REPO_ROOT = Path(__file__).resolve().parents[3]
MODEL = REPO_ROOT / "models" / DEFAULT_MODEL_FILE
TIMEOUT_S = 600
COMMAND = (sys.executable, "-m", "bench.reliability", "db_outage", "--size", "small")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.model,
    pytest.mark.postgres,
    pytest.mark.skipif(not MODEL.is_file(), reason=f"{MODEL} missing: run `make model`"),
    pytest.mark.skipif(
        not os.environ.get(POSTGRES_ENV),
        reason=f"the db_outage figure needs PostgreSQL: set {POSTGRES_ENV}",
    ),
]


@pytest.fixture(scope="module")
def figure(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("db_outage")
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLAMAQL_")}
    env.update(
        LLAMAQL_MODEL_PATH=str(MODEL),
        LLAMAQL_CONTEXT_SIZE="1024",
        **{POSTGRES_ENV: os.environ[POSTGRES_ENV]},
    )
    done = subprocess.run(
        [*COMMAND, "--results-dir", str(out)],
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
    (only,) = json.loads(result.read_text())["figures"]
    return only, done.stdout + done.stderr


def test_the_outage_figure_meets_its_bounds(figure: tuple[dict[str, Any], str]) -> None:
    document, output = figure
    assert document["figure"] == "db_outage"
    assert document["skipped"] is None, document["skipped"]
    failed = [c for c in document["checks"] if c["enforced"] and not c["ok"]]
    assert document["ok"], f"{json.dumps(failed or document, indent=1)}\n{output[-3000:]}"
    assert "| db_outage |" in output


def test_both_outages_were_met_by_requests_and_replies(figure: tuple[dict[str, Any], str]) -> None:
    values = figure[0]["values"]
    for mode in ("refuse", "blackhole"):
        answers = values[mode]["answers"]
        # The database was really away: requests met it, and said so with the code.
        assert answers.get("query:SERVICE_UNAVAILABLE", 0) >= 1, answers
        assert answers.get("send:SERVICE_UNAVAILABLE", 0) >= 1, answers
        assert values[mode]["in_flight"] >= 1
        assert set(values[mode]["follow_ups"]) == {"COMPLETE"}
