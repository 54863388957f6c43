"""Every benchmark at its smallest size, through `python -m bench --smoke`, so that the
suite cannot rot as the server changes. No timing is asserted: only that each benchmark
ran against a live server and reported what it measured."""

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
LLAMA_SERVER = REPO_ROOT / ".build" / "llama-server" / "bin" / "llama-server"
SMOKE_TIMEOUT_S = 600

pytestmark = [
    pytest.mark.slow,
    pytest.mark.model,
    pytest.mark.skipif(not MODEL.is_file(), reason=f"{MODEL} missing: run `make model`"),
]


def _smoke(out: Path, benchmarks: list[str], documents: list[str]) -> dict[str, dict[str, Any]]:
    """Run `python -m bench --smoke BENCHMARKS` into `out`; the named result documents."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLAMAQL_")}
    env["LLAMAQL_MODEL_PATH"] = str(MODEL)
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--results-dir", str(out), *benchmarks],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, f"python -m bench --smoke failed:\n{run.stderr[-4000:]}"
    docs = {name: json.loads((out / f"{name}.json").read_text()) for name in documents}
    for name, doc in docs.items():
        assert doc["summary"] in run.stdout, f"{name}'s summary line was not printed"
    return docs


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _smoke(
        tmp_path_factory.mktemp("bench-results"),
        ["stream", "concurrency", "titles", "turns", "restart", "api", "shape", "models", "live"],
        [
            "stream_vs_raw",
            "concurrency",
            "titles",
            "turns",
            "restart",
            "api_overhead",
            "batch_shape",
            "models",
            "live",
        ],
    )


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Building llama-server takes minutes, so `make test` does not; CI runs
    # `make llama-server` first and so runs this for real.
    if not LLAMA_SERVER.is_file():
        pytest.skip(f"llama-server not built ({LLAMA_SERVER} missing): run `make llama-server`")
    return _smoke(tmp_path_factory.mktemp("bench-peer"), ["peer"], ["peer"])["peer"]


def test_every_result_names_the_machine_and_model(results: dict[str, dict[str, Any]]) -> None:
    for doc in results.values():
        machine = doc["machine"]
        assert machine["cpu"]
        assert machine["usable_cores"] >= 1
        assert machine["model"]["file"] == DEFAULT_MODEL_FILE
        assert "n_threads" in machine["settings"]


def test_stream_and_raw_generate_the_same_token_count(
    results: dict[str, dict[str, Any]],
) -> None:
    figures = results["stream_vs_raw"]["figures"]
    max_tokens = results["stream_vs_raw"]["params"]["max_tokens"]
    assert figures["token_counts_match"]
    assert figures["same_prompt_tokens_evaluated"]  # the raw side reuses what the server may
    for row in figures["rounds"]:
        assert row["server"]["failed"] is None
        assert row["server"]["completion_tokens"] == max_tokens
        assert row["raw"]["completion_tokens"] == max_tokens
    assert figures["raw"]["decode_tps"]["median"] is not None
    assert figures["server"]["ttft_ms"]["median"] is not None


def test_concurrency_levels_all_complete(results: dict[str, dict[str, Any]]) -> None:
    levels = results["concurrency"]["figures"]["levels"]
    assert [level["streams"] for level in levels] == [1, 2]
    for level in levels:
        assert level["completed"] + level["refused"] == level["streams"]
        assert level["refused"] == 0  # the default queue holds two waiting requests
        assert level["aggregate_tps"] is not None


def test_titles_runs_the_second_burst_with_titles_on_and_off(
    results: dict[str, dict[str, Any]],
) -> None:
    (level,) = results["titles"]["figures"]["levels"]
    assert level["streams"] == 2
    for side in ("titles_on", "titles_off"):
        (burst,) = level[side]["rounds"]
        assert burst["completed"] == 2, burst
        assert level[side]["ttft_p95_ms"]["median"] is not None
    assert level["ttft_p95_on_over_off"] is not None


def test_turns_send_the_history(results: dict[str, dict[str, Any]]) -> None:
    for mode in ("alone", "interleaved"):
        turns = results["turns"]["figures"][mode]["turns"]
        assert [turn["failed"] for turn in turns] == [None, None]
        assert turns[1]["prompt_tokens"] > turns[0]["prompt_tokens"]
        assert all(turn["evaluated_prompt_tokens"] is not None for turn in turns)


def test_restart_reuses_the_kv_files(results: dict[str, dict[str, Any]]) -> None:
    figures = results["restart"]["figures"]
    assert figures["kv_files_at_stop"]["files"] >= 1
    evaluated = {
        case: figures[case]["evaluated_prompt_tokens"]["median"]
        for case in ("no_restart", "restart_kv_files", "restart_kv_files_off")
    }
    assert all(figures[case]["failed"] == 0 for case in evaluated)
    # After a restart only the new tokens, as without one; with files off, the history too.
    assert evaluated["restart_kv_files"] == evaluated["no_restart"]
    assert evaluated["restart_kv_files_off"] > evaluated["restart_kv_files"]


def test_api_overhead_answers_every_read_on_both_sides_alike(
    results: dict[str, dict[str, Any]],
) -> None:
    doc = results["api_overhead"]
    requests = doc["params"]["requests"]
    for read in ("conversations", "messages", "search"):
        figures = doc["figures"][read]
        assert figures["same_answer"], read  # llamaql and the bare endpoint answer alike
        assert figures["ratio_median"] is not None
        for side in ("llamaql", "bare"):
            assert figures[side]["errors"] == 0, (read, side)
            assert figures[side]["latency_p95_ms"] is not None
            assert figures[side]["server_cpu_ms_per_request"] is not None
            assert all(run[side]["requests"] == requests for run in figures["runs"])


def test_batch_shape_times_every_case(results: dict[str, dict[str, Any]]) -> None:
    figures = results["batch_shape"]["figures"]
    assert list(figures["step_ms_median"]) == [
        "2 in one run",
        "2 in 2 runs",
        "4 sorted",
        "4 rotated",
    ]
    assert all(ms > 0 for ms in figures["step_ms_median"].values())
    assert figures["split_over_one_run"] > 0
    assert figures["rotated_over_sorted"] > 0


def test_peer_runs_both_servers_at_each_level(peer: dict[str, Any]) -> None:
    max_tokens = peer["params"]["max_tokens"]
    levels = peer["figures"]["levels"]
    assert [level["streams"] for level in levels] == [1, 2]
    for level in levels:
        assert level["rounds_run"] == peer["params"]["rounds"]
        assert level["void_rounds"] == 0, [r["void"] for r in level["rounds"]]
        assert level["tps_ratio"]["median"] is not None
        assert level["ttft_p95_ratio"]["median"] is not None
        for round_ in level["rounds"]:
            for side in ("llamaql", "llama_server"):
                figures = round_[side]
                for burst in (figures, figures["before"]):  # the measured one and the one before
                    assert burst["completed"] == level["streams"], (side, burst)
                    assert burst["refused"] == 0
                    # the story prompts run past the smoke size on both sides: no early stop
                    assert burst["completion_tokens_each"] == [max_tokens] * level["streams"]
                    assert burst["ttft_ms"]["p95"] is not None
                assert figures["client_cpu_ms_per_token"] > 0
                assert Path(figures["server"]["log"]).is_file()  # each server's log is kept
            server = round_["llama_server"]["server"]
            assert "-np" in server["command"]
            assert server["sampling"]["top_k"] == 1
            assert server["slot_layout_as_asked"], server["slot_layout"]
            assert "LLAMAQL_AUTO_TITLE" not in round_["llamaql"]["server"]["env"]  # default: on
    assert [burst["streams"] for burst in peer["figures"]["bursts"]] == [2]
    assert "stream_bench" in peer["figures"]["single_stream"]


def test_peer_interleaves_conversations_on_both_servers(peer: dict[str, Any]) -> None:
    params = peer["params"]
    turns = peer["figures"]["turns"]
    assert turns["rounds_run"] == params["rounds"]
    assert turns["void_rounds"] == 0, [r["void"] for r in turns["rounds"]]
    for round_ in turns["rounds"]:
        for side in ("llamaql", "llama_server"):
            mine = round_[side]
            assert mine["failed"] == 0
            assert mine["conversations"] == params["others"] + 1
            assert len(mine["ttft_ms_median_by_turn"]) == params["turns"]
    for side in ("llamaql", "llama_server"):
        assert turns[side]["last_over_turn2_ttft"]["median"] is not None


def test_models_reports_both_designs_and_the_load(results: dict[str, dict[str, Any]]) -> None:
    figures = results["models"]["figures"]
    assert figures["ratio_shared"] > 0
    assert figures["ratio_turn"] > 0
    assert figures["unloaded_to_first_token_median_s"] > 0
    assert figures["load_alone_median_s"] > 0


def test_live_times_a_watcher_behind_the_sender(results: dict[str, dict[str, Any]]) -> None:
    figures = results["live"]["figures"]
    assert figures["reference"] == "the sender's receipt on the generating replica"
    assert figures["frames"]["same_replica"] >= 1
    assert figures["same_replica_delay_ms"]["n"] == figures["frames"]["same_replica"]
    # The smoke run passes no PostgreSQL URL: the other replica is skipped, and says why.
    assert figures["other_replica_delay_ms"].startswith("skipped: ")
