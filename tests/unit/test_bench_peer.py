"""The peer benchmark's pure parts: side order, prompts, void rounds, medians with spread,
the burst goals and the rows printed from them (no server is started here)."""

from __future__ import annotations

from typing import Any

from bench.client import StreamTiming
from bench.llama_server import GREEDY, _record_chunk, count_like_llamaql, slot_layout
from bench.peer import bursts, level_summary, turns_summary
from bench.peer_rounds import (
    LLAMA_SERVER,
    LLAMAQL,
    before_prompt,
    cell,
    order,
    over_rounds,
    stat,
    story_prompt,
    turns_void_reason,
    void_reason,
)
from bench.peer_table import summary, table_rows


def burst(
    tps: float,
    *,
    tokens: list[int | None] | None = None,
    prompts: list[int | None] | None = None,
    refused: int = 0,
    ttft_p95: float = 100.0,
) -> dict[str, Any]:
    """One side's measured burst as `_timed_burst` returns it (the fields read here)."""
    each = tokens if tokens is not None else [8, 8]
    return {
        "streams": len(each),
        "refused": refused,
        "aggregate_tps": tps,
        "ttft_ms": {"p50": ttft_p95 / 2, "p95": ttft_p95},
        "completion_tokens": sum(t or 0 for t in each),
        "completion_tokens_each": each,
        "prompt_tokens_each": prompts if prompts is not None else [40, 41],
        "delivery_tps_per_stream": {"p50": tps / 2},
        "client_cpu_ms_per_token": 0.2,
        "before": {"aggregate_tps": tps},
    }


def round_of(index: int, ours: float, peer: float, *, void: str | None = None) -> dict[str, Any]:
    return {
        "round": index,
        "first": order(index)[0],
        "void": void,
        "tps_ratio": round(ours / peer, 3),
        "ttft_p50_ratio": 1.0,
        "ttft_p95_ratio": 0.5,
        LLAMAQL: burst(ours),
        LLAMA_SERVER: burst(peer),
    }


def test_the_order_alternates_so_each_side_goes_first_in_half_the_rounds() -> None:
    firsts = [order(i)[0] for i in range(6)]
    assert firsts == [LLAMA_SERVER, LLAMAQL] * 3
    assert all(set(order(i)) == {LLAMAQL, LLAMA_SERVER} for i in range(6))


def test_the_burst_before_differs_from_the_measured_prompts_from_the_first_word() -> None:
    measured = [story_prompt(i) for i in range(16)]
    before = [before_prompt(i) for i in range(16)]
    assert len(set(measured)) == len(set(before)) == 16  # distinct chats in each burst
    assert {p.split()[0] for p in before}.isdisjoint({p.split()[0] for p in measured})


def test_a_round_counts_only_when_both_sides_did_the_same_work() -> None:
    assert void_reason(burst(100.0), burst(90.0)) is None
    # llama-server may not report prompt tokens: it is not held to them
    assert void_reason(burst(100.0), burst(90.0, prompts=[None, None])) is None


def test_different_token_counts_void_the_round_and_say_why() -> None:
    reason = void_reason(burst(100.0, tokens=[8, 5]), burst(90.0))
    assert reason is not None
    assert "completion_tokens_each differ" in reason
    assert "[8, 5]" in reason
    reason = void_reason(burst(100.0), burst(90.0, prompts=[40, 44]))
    assert reason is not None
    assert "prompt_tokens_each differ" in reason


def test_a_failed_reply_or_a_missing_count_voids_the_round() -> None:
    reason = void_reason(burst(100.0, refused=1), burst(90.0))
    assert reason is not None
    assert "llamaql: 1 of 2 replies failed" in reason
    assert void_reason(burst(100.0), burst(90.0, tokens=[8, None])) is not None


def test_stat_is_the_median_with_min_and_max_of_the_values_present() -> None:
    assert stat([1.0, 3.0, None, 2.0]) == {"n": 3, "median": 2.0, "min": 1.0, "max": 3.0}
    assert stat([1.0, 2.0]) == {"n": 2, "median": 1.5, "min": 1.0, "max": 2.0}
    assert stat([None]) == {"n": 0, "median": None, "min": None, "max": None}


def test_void_rounds_are_counted_and_left_out_of_every_median() -> None:
    rounds = [
        round_of(0, 100.0, 100.0),
        round_of(1, 110.0, 100.0),
        round_of(2, 900.0, 100.0, void="completion_tokens_each differ"),
        round_of(3, 120.0, 100.0),
    ]
    figures = over_rounds(rounds, {"tps_ratio": ("tps_ratio",)})
    assert figures["rounds_run"] == 4
    assert figures["void_rounds"] == 1
    assert figures["tps_ratio"] == {"n": 3, "median": 1.1, "min": 1.0, "max": 1.2}

    level = level_summary(8, rounds)
    assert level["streams"] == 8
    assert level["void_rounds"] == 1
    assert level["tps_ratio"]["max"] == 1.2
    assert level[LLAMAQL]["aggregate_tps"] == {"n": 3, "median": 110.0, "min": 100.0, "max": 120.0}
    assert level[LLAMA_SERVER]["aggregate_tps"]["median"] == 100.0
    assert level[LLAMAQL]["client_cpu_ms_per_token"]["median"] == 0.2
    assert len(level["rounds"]) == 4  # the void round stays in the result


def test_a_level_of_only_void_rounds_has_no_figures() -> None:
    level = level_summary(4, [round_of(0, 100.0, 90.0, void="x"), round_of(1, 1.0, 9.0, void="y")])
    assert level["void_rounds"] == 2
    assert level["tps_ratio"]["median"] is None
    assert cell(level["tps_ratio"], "x") == "n/a"
    [row] = bursts([level], (4, 8))
    assert row["tps_goal_met"] is None


def test_the_burst_rows_hold_the_burst_levels_to_the_goals() -> None:
    levels = [
        level_summary(1, [round_of(0, 50.0, 100.0)]),
        level_summary(4, [round_of(1, 100.0, 100.0)]),
        level_summary(8, [round_of(2, 90.0, 100.0)]),
    ]
    rows = bursts(levels, (4, 8))
    assert [r["streams"] for r in rows] == [4, 8]
    assert [r["tps_goal_met"] for r in rows] == [True, False]  # 1.0x meets ">= 1.0"
    assert [r["ttft_goal_met"] for r in rows] == [True, True]  # 0.5x under 1.2


def turns_side(ttft_by_turn: list[float], tokens: int = 8) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {"turn": t + 1, "ttft_ms": ms, "completion_tokens": tokens, "prompt_tokens": 30 + t}
        for t, ms in enumerate(ttft_by_turn)
    ]
    for row in rows:
        row["failed"] = None
    return {
        "ttft_ms_median_by_turn": ttft_by_turn,
        "last_over_turn2_ttft": round(ttft_by_turn[-1] / ttft_by_turn[1], 3),
        "client_cpu_ms_per_token": 0.3,
        "by_conversation": [rows],
    }


def test_turn_rounds_void_on_different_counts_and_report_medians() -> None:
    ours, peer = turns_side([100.0, 100.0, 130.0]), turns_side([90.0, 100.0, 140.0])
    assert turns_void_reason(ours["by_conversation"], peer["by_conversation"]) is None
    shorter = turns_side([90.0, 100.0, 140.0], tokens=7)
    reason = turns_void_reason(ours["by_conversation"], shorter["by_conversation"])
    assert reason is not None
    assert "completion_tokens differ" in reason

    rounds = [
        {"round": 0, "first": LLAMA_SERVER, "void": None, LLAMAQL: ours, LLAMA_SERVER: peer},
        {
            "round": 1,
            "first": LLAMAQL,
            "void": None,
            LLAMAQL: turns_side([100.0, 100.0, 110.0]),
            LLAMA_SERVER: turns_side([90.0, 100.0, 120.0]),
        },
        {"round": 2, "first": LLAMA_SERVER, "void": "x", LLAMAQL: ours, LLAMA_SERVER: shorter},
    ]
    turns = turns_summary(rounds, 3)
    assert turns["rounds_run"] == 3
    assert turns["void_rounds"] == 1
    assert turns[LLAMAQL]["last_over_turn2_ttft"] == {"n": 2, "median": 1.2, "min": 1.1, "max": 1.3}
    assert turns[LLAMA_SERVER]["ttft_ms_by_turn_median_of_rounds"] == [90.0, 100.0, 130.0]


def test_the_rows_show_medians_spread_void_rounds_and_what_single_stream_measures() -> None:
    rounds = [round_of(0, 100.0, 100.0), round_of(1, 120.0, 100.0), round_of(2, 1.0, 9.0, void="v")]
    levels = [level_summary(8, rounds)]
    turn_round = {
        "round": 3,
        "first": LLAMAQL,
        "void": None,
        LLAMAQL: turns_side([100.0, 100.0, 130.0]),
        LLAMA_SERVER: turns_side([90.0, 100.0, 140.0]),
    }
    figures = {
        "levels": levels,
        "bursts": bursts(levels, (4, 8)),
        "single_stream": {"stream_bench": {"decode_ratio_server_over_raw": 0.955}},
        "turns": turns_summary([turn_round], 3),
    }
    rows = table_rows(figures)
    assert "110 (100-120) vs 100 (1.1x (1-1.2))" in rows[0]
    assert cell({"n": 3, "median": 1847.43, "min": 697.786, "max": 2997.07}) == "1847 (698-2997)"
    assert cell({"n": 2, "median": 0.2787, "min": 0.1517, "max": 0.3}, "x") == "0.279x (0.152-0.3)"
    assert "2 of 3 rounds (1 void)" in rows[0]
    assert "peer burst N=8" in rows[1]
    assert "1.1x (1-1.2) met" in rows[1]
    assert rows[2].startswith("| single-stream decode |")
    assert "| 0.955 |" in rows[2]
    assert "llama-server" not in rows[2].split("|")[1]
    assert "1.3x" in rows[3]
    line = summary(figures)
    assert "N=8 tok/s met" in line
    assert "(stream bench server/raw) 0.955" in line


def test_llama_server_samples_greedy_and_its_slots_are_read_from_its_log() -> None:
    assert GREEDY["top_k"] == 1
    assert GREEDY["samplers"] == ["top_k"]
    log = (
        "srv    load_model: initializing slots, n_slots = 1\n"
        "srv    load_model: initializing, n_slots = 1, n_ctx_slot = 2048, kv_unified = 'false'\n"
    )
    assert slot_layout(log) == {"n_slots": 1, "n_ctx_slot": 2048, "kv_unified": False}
    assert slot_layout("nothing about slots") is None


def streamed(finish_reason: str, completion_tokens: int) -> StreamTiming:
    """A llama-server reply folded from its last two streamed chunks."""
    timing = StreamTiming(sent_at=0.0)
    _record_chunk(timing, {"choices": [{"delta": {}, "finish_reason": finish_reason}]}, 1.0)
    usage = {"completion_tokens": completion_tokens, "prompt_tokens": 45}
    _record_chunk(timing, {"choices": [], "usage": usage}, 1.0)
    count_like_llamaql(timing)
    return timing


def test_llama_server_counts_as_llamaql_does_without_the_end_of_turn_token() -> None:
    stopped = streamed("stop", 23)  # 22 tokens of text, then the end-of-turn token
    assert stopped.completion_tokens == 22
    assert stopped.usage is not None
    assert stopped.usage["completionTokensReported"] == 23
    cut = streamed("length", 96)  # cut at max_tokens: every token is text
    assert cut.completion_tokens == 96
