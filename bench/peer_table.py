"""The peer benchmark's figures as text: the one-line summary and the Markdown rows that
bench/results/README.md keeps (`python -m bench.report` prints them too). Every value is
the median of the rounds that are not void, with its spread (min-max) in brackets."""

from __future__ import annotations

from typing import Any

from bench.peer_rounds import LLAMA_SERVER, LLAMAQL, cell


def _counted(figures: dict[str, Any]) -> str:
    run, void = figures["rounds_run"], figures["void_rounds"]
    return f"{run - void} of {run} rounds" + (f" ({void} void)" if void else "")


def _met(flag: bool | None) -> str:
    return "n/a" if flag is None else ("met" if flag else "missed")


def _level_row(level: dict[str, Any]) -> str:
    ours, peer = level[LLAMAQL], level[LLAMA_SERVER]

    def ttft(side: dict[str, Any]) -> str:
        return f"{cell(side['ttft_p50_ms'])}/{cell(side['ttft_p95_ms'])}"

    return (
        f"| peer N={level['streams']} | total tok/s llamaql vs llama-server (ratio); first "
        "token p50/p95 ms llamaql vs llama-server (p95 ratio); bench client CPU ms per "
        "token llamaql vs llama-server; rounds | "
        f"{cell(ours['aggregate_tps'])} vs {cell(peer['aggregate_tps'])} "
        f"({cell(level['tps_ratio'], 'x')}); {ttft(ours)} vs {ttft(peer)} "
        f"({cell(level['ttft_p95_ratio'], 'x')}); {cell(ours['client_cpu_ms_per_token'])} vs "
        f"{cell(peer['client_cpu_ms_per_token'])}; {_counted(level)} |"
    )


def _burst_row(burst: dict[str, Any]) -> str:
    goals = burst["goals"]
    return (
        f"| peer burst N={burst['streams']} (default settings, right after another burst) | "
        f"tok/s over llama-server's (goal >= {goals['tps_ratio_at_least']}); first token "
        f"p95 over llama-server's (goal <= {goals['ttft_p95_ratio_at_most']}) | "
        f"{cell(burst['tps_ratio'], 'x')} {_met(burst['tps_goal_met'])}; "
        f"{cell(burst['ttft_p95_ratio'], 'x')} {_met(burst['ttft_goal_met'])}; "
        f"{_counted(burst)} |"
    )


def _stream_cell(figures: dict[str, Any]) -> str:
    stream = figures["single_stream"]["stream_bench"]
    return f"{stream['decode_ratio_server_over_raw']}" if stream else "not run"


def table_rows(figures: dict[str, Any]) -> list[str]:
    """The Markdown rows bench/results/README.md keeps (also printed after the summary)."""
    rows = [_level_row(level) for level in figures["levels"]]
    rows += [_burst_row(burst) for burst in figures["bursts"]]
    rows.append(
        "| single-stream decode | server/raw decode tok/s of the stream bench (llamaql "
        "against llama-cpp-python in process; the peer rows measure delivery, not decode) | "
        f"{_stream_cell(figures)} |"
    )
    turns = figures["turns"]
    for name, side in (("llamaql", LLAMAQL), ("llama-server", LLAMA_SERVER)):
        mine = turns[side]
        by_turn = "/".join(f"{v:.0f}" for v in mine["ttft_ms_by_turn_median_of_rounds"] if v)
        rows.append(
            f"| peer turns, {name} | last turn/turn 2 first token; bench client CPU ms per "
            "token; first token ms by turn (median of the rounds' medians over the "
            "interleaved conversations); rounds | "
            f"{cell(mine['last_over_turn2_ttft'], 'x')}; "
            f"{cell(mine['client_cpu_ms_per_token'])}; {by_turn}; {_counted(turns)} |"
        )
    return rows


def summary(figures: dict[str, Any]) -> str:
    levels = "; ".join(
        f"N={lv['streams']} {cell(lv[LLAMAQL]['aggregate_tps'])} vs "
        f"{cell(lv[LLAMA_SERVER]['aggregate_tps'])} tok/s ({cell(lv['tps_ratio'], 'x')}), "
        f"first token p95 ratio {cell(lv['ttft_p95_ratio'], 'x')}, {_counted(lv)}"
        for lv in figures["levels"]
    )
    bursts = "; ".join(
        f"N={b['streams']} tok/s {_met(b['tps_goal_met'])}, first token p95 "
        f"{_met(b['ttft_goal_met'])}"
        for b in figures["bursts"]
    )
    turns = figures["turns"]
    return (
        f"peer (llamaql default settings vs llama-server, medians (min-max) of rounds): "
        f"{levels}; burst goals: {bursts or 'no burst level run'}; last turn/turn 2 first "
        f"token llamaql {cell(turns[LLAMAQL]['last_over_turn2_ttft'], 'x')}, llama-server "
        f"{cell(turns[LLAMA_SERVER]['last_over_turn2_ttft'], 'x')}; single-stream decode "
        f"(stream bench server/raw) {_stream_cell(figures)}"
    )
