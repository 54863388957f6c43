"""`python -m bench.report [RESULTS_DIR]`: the latest results as the Markdown table that
bench/results/README.md keeps (machine line first), printed to stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_RESULTS_DIR
from bench.peer_table import table_rows as peer_table_rows


def _load(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def machine_line(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    settings = m["settings"]
    backend = "GPU-capable build" if m.get("gpu_offload") else "CPU build"
    return (
        f"{m['cpu']}, {m['usable_cores']} usable cores, {m['os']}, Python {m['python']}, "
        f"llama-cpp-python {m.get('llama_cpp_python')} ({backend}), model {m['model']['file']}, "
        f"threads {settings['n_threads'] or 'all'}, batch {settings['n_batch']}, "
        f"use_extra_bufts {settings['use_extra_bufts']}, decode lanes "
        f"{settings.get('decode_lanes', 1)}; CPUs busy before the run "
        f"{m.get('cpu_busy_before')}; commit {m.get('git_commit')}; {doc['started_at']}"
    )


def _stream_rows(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]
    raw, server = f["raw"], f["server"]

    def cell(s: dict[str, Any]) -> str:
        return f"{s['median']} ({s['min']}-{s['max']})"

    decode_ratio = f["decode_ratio_server_over_raw"]["median"]
    ttft_ratio = f["ttft_ratio_server_over_raw"]["median"]
    return [
        f"| stream vs raw | decode tok/s, median (min-max) | raw {cell(raw['decode_tps'])}; "
        f"server {cell(server['decode_tps'])}; server/raw {decode_ratio} |",
        f"| stream vs raw | TTFT ms, median (min-max) | raw {cell(raw['ttft_ms'])}; "
        f"server {cell(server['ttft_ms'])}; server/raw {ttft_ratio}"
        + (f"; server - raw {cell(gap)}" if (gap := f.get("ttft_gap_ms_server_minus_raw")) else "")
        + " |",
    ]


def _concurrency_rows(doc: dict[str, Any]) -> list[str]:
    return [
        f"| concurrency N={lv['streams']} | aggregate tok/s; TTFT p50/p95 ms; gap p50/p95 ms; "
        f"refused | {lv['aggregate_tps']}; {lv['ttft_ms']['p50']}/{lv['ttft_ms']['p95']}; "
        f"{lv['inter_token_gap_ms']['p50']}/{lv['inter_token_gap_ms']['p95']}; {lv['refused']} |"
        for lv in doc["figures"]["levels"]
    ]


def _titles_rows(doc: dict[str, Any]) -> list[str]:
    def cell(figure: dict[str, Any]) -> str:
        return f"{figure['median']} ({figure['min']}-{figure['max']})"

    return [
        f"| titles N={lv['streams']} | second burst, titles on vs off: total tok/s; TTFT p95 ms "
        f"(median (min-max) of {len(lv['titles_on']['rounds'])} rounds) | "
        f"{cell(lv['titles_on']['tps'])} vs {cell(lv['titles_off']['tps'])} "
        f"({lv['tps_on_over_off']}x); {cell(lv['titles_on']['ttft_p95_ms'])} vs "
        f"{cell(lv['titles_off']['ttft_p95_ms'])} ({lv['ttft_p95_on_over_off']}x) |"
        for lv in doc["figures"]["levels"]
    ]


def _turns_rows(doc: dict[str, Any]) -> list[str]:
    rows = []
    for mode in ("alone", "interleaved"):
        turns = doc["figures"][mode]["turns"]
        evaluated = "/".join(str(t["evaluated_prompt_tokens"]) for t in turns)
        ttft = "/".join(f"{t['ttft_ms']:.0f}" for t in turns if t["ttft_ms"] is not None)
        rows.append(
            f"| turns ({mode}) | prompt tokens evaluated per turn; TTFT ms per turn | "
            f"{evaluated}; {ttft} |"
        )
    return rows


def _restart_rows(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]

    def cell(case: str) -> str:
        c = f[case]
        return (
            f"{c['evaluated_prompt_tokens']['median']} of {c['prompt_tokens']['median']}, "
            f"{c['ttft_ms']['median']} ms"
        )

    return [
        f"| restart (turn {doc['params']['turns'] + 1}, median of {doc['params']['rounds']}) | "
        f"prompt tokens evaluated, TTFT: no restart; after a restart; KV files off | "
        f"{cell('no_restart')}; {cell('restart_kv_files')}; {cell('restart_kv_files_off')} |"
    ]


def _api_rows(doc: dict[str, Any]) -> list[str]:
    f, p = doc["figures"], doc["params"]
    rows = []
    for read in p.get("reads", []):
        r = f[read]
        llamaql, bare = r["llamaql"], r["bare"]
        rows.append(
            f"| API {read} | c={p['concurrency']}, {p['conversations']} conversations: req/s "
            f"llamaql vs bare (ratio, rounds); p95 ms; server CPU ms/request | "
            f"{llamaql['requests_per_s']} vs {bare['requests_per_s']} ({r['ratio_median']}x, "
            f"{'/'.join(str(x) for x in r['ratio_rounds'])}); {llamaql['latency_p95_ms']} vs "
            f"{bare['latency_p95_ms']}; {llamaql['server_cpu_ms_per_request']} vs "
            f"{bare['server_cpu_ms_per_request']} |"
        )
    return rows


def _shape_rows(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]
    steps = "; ".join(f"{name} {ms}" for name, ms in f["step_ms_median"].items())
    return [
        f"| batch shape | ms per one-token step (median); split/one run; rotated/sorted | "
        f"{steps}; {f['split_over_one_run']}x; {f['rotated_over_sorted']}x |"
    ]


def _peer_rows(doc: dict[str, Any]) -> list[str]:
    if "bursts" not in doc["figures"]:  # written before the rounds had medians and spread
        return ["| peer | (a result in the format before 2026-12-07: run the peer bench again) | |"]
    return peer_table_rows(doc["figures"])


def render(results_dir: Path) -> str:
    parts = [
        ("stream_vs_raw", _stream_rows),
        ("concurrency", _concurrency_rows),
        ("titles", _titles_rows),
        ("turns", _turns_rows),
        ("restart", _restart_rows),
        ("api_overhead", _api_rows),
        ("batch_shape", _shape_rows),
        ("peer", _peer_rows),
    ]
    docs = {name: _load(results_dir, name) for name, _ in parts}
    first = next((doc for doc in docs.values() if doc is not None), None)
    if first is None:
        return f"no results in {results_dir}"
    lines = [f"Machine: {machine_line(first)}", "", "| benchmark | figure | value |"]
    lines.append("|---|---|---|")
    for name, rows in parts:
        doc = docs[name]
        if doc is not None:
            lines += rows(doc)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    print(render(Path(args[0]) if args else DEFAULT_RESULTS_DIR))


if __name__ == "__main__":
    main()
