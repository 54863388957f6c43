"""Benchmark: the first turn after a restart. Conversations of `turns` turns on a server,
which then stops cleanly (SIGINT) and starts again on the same database and KV folder
(LLAMAQL_KV_DIR); each conversation's next turn records the prompt tokens evaluated
(promptTokens - cachedPromptTokens) and the time to first token. Against:
- the same turn of an identical conversation on the first server, before it stopped
  (no restart: the KV in its sequence or parked in memory);
- the same turn after a restart with KV files off (LLAMAQL_KV_DISK_MB=0): what every
  restart cost before KV files.
Each server answers one short warm-up reply of another user before the measured turns,
so a figure is the conversation's first turn, not the process's first decode. The files
are read back just after they were written, from the page cache; after a reboot the first
read of each comes from the disk itself.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.client import WsSession, create_conversation
from bench.common import Result, spread
from bench.server import ServerProcess
from bench.turns import TURN_PROMPT, turn_row
from llamaql.config import Config

CASES = ("no_restart", "restart_kv_files", "restart_kv_files_off")


@dataclass(frozen=True, slots=True)
class RestartParams:
    turns: int = 6  # turns of history before the measured one
    rounds: int = 3  # conversations measured per case
    max_tokens: int = 48
    seed: int = 42


SMOKE = RestartParams(turns=1, rounds=1, max_tokens=8)


class _Run:
    """The servers of one run: one database and one KV folder, `env` for each start."""

    def __init__(self, settings: Config, params: RestartParams, folder: Path) -> None:
        self.settings = settings
        self.params = params
        self.user = str(uuid.uuid4())
        self.env = {
            "LLAMAQL_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'restart.db'}",
            "LLAMAQL_KV_DIR": str(folder / "kv"),
        }
        self.kv_dir = folder / "kv"

    def server(self, **env: str) -> ServerProcess:
        return ServerProcess(self.settings, extra_env={**self.env, **env})

    async def turn(self, server: ServerProcess, cid: str, turn: int) -> dict[str, Any]:
        options = {
            "temperature": 0.0,
            "seed": self.params.seed,
            "maxTokens": self.params.max_tokens,
        }
        async with WsSession(server.ws_url, self.user) as ws:
            timing = await ws.send_message(cid, TURN_PROMPT.format(turn=turn), options)
        return turn_row(turn, timing)


async def _warm_up(server: ServerProcess) -> None:
    user = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=30) as http:
        cid = await create_conversation(http, server.http_url, user, "warm-up")
    async with WsSession(server.ws_url, user) as ws:
        await ws.send_message(cid, "Hello.", {"temperature": 0.0, "maxTokens": 2})


async def _history(run: _Run, server: ServerProcess, http: httpx.AsyncClient, title: str) -> str:
    cid = await create_conversation(http, server.http_url, run.user, title)
    for turn in range(1, run.params.turns + 1):
        await run.turn(server, cid, turn)
    return cid


async def _measure(settings: Config, params: RestartParams, folder: Path) -> dict[str, Any]:
    run = _Run(settings, params, folder)
    measured = params.turns + 1
    rows: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    restarted: list[str] = []
    files_off: list[str] = []
    async with run.server() as server, httpx.AsyncClient(timeout=30) as http:
        await _warm_up(server)
        for n in range(params.rounds):
            restarted.append(await _history(run, server, http, f"restart {n}"))
            files_off.append(await _history(run, server, http, f"files off {n}"))
            unbroken = await _history(run, server, http, f"no restart {n}")
            rows["no_restart"].append(await run.turn(server, unbroken, measured))
    kv_files = sorted(run.kv_dir.glob("*.kv"))
    written = {"files": len(kv_files), "bytes": sum(path.stat().st_size for path in kv_files)}
    async with run.server() as server:
        await _warm_up(server)
        for cid in restarted:
            rows["restart_kv_files"].append(await run.turn(server, cid, measured))
    async with run.server(LLAMAQL_KV_DISK_MB="0") as server:
        await _warm_up(server)
        for cid in files_off:
            rows["restart_kv_files_off"].append(await run.turn(server, cid, measured))
    return {"kv_files_at_stop": written, **{case: _case(rows[case]) for case in CASES}}


def _case(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def values(key: str) -> list[float]:
        return [row[key] for row in rows if row[key] is not None]

    return {
        "turns": rows,
        "evaluated_prompt_tokens": spread(values("evaluated_prompt_tokens")),
        "prompt_tokens": spread(values("prompt_tokens")),
        "ttft_ms": spread(values("ttft_ms")),
        "failed": sum(row["failed"] is not None for row in rows),
    }


def _line(name: str, case: dict[str, Any]) -> str:
    evaluated, prompt = case["evaluated_prompt_tokens"], case["prompt_tokens"]
    return (
        f"{name} evaluated {evaluated['median']} of {prompt['median']} prompt tokens, "
        f"TTFT {case['ttft_ms']['median']} ms"
    )


async def run(settings: Config, params: RestartParams) -> Result:
    result = Result("restart", params={**asdict(params), "prompt": TURN_PROMPT})
    with tempfile.TemporaryDirectory(prefix="llamaql-restart-") as folder:
        figures = await _measure(settings, params, Path(folder))
    ttft = {case: figures[case]["ttft_ms"]["median"] for case in CASES}
    if ttft["restart_kv_files"] and ttft["no_restart"]:
        figures["ttft_restart_over_no_restart"] = round(
            ttft["restart_kv_files"] / ttft["no_restart"], 3
        )
    result.figures = figures
    result.summary = f"restart: turn {params.turns + 1} (median of {params.rounds}): " + "; ".join(
        _line(name, figures[case])
        for name, case in zip(
            ("no restart", "after a restart", "after a restart with KV files off"),
            CASES,
            strict=True,
        )
    )
    return result
