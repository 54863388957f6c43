"""Benchmark 1, stream vs raw decode: one prompt, greedy options and a fixed token count,
generated (a) in this process with llama-cpp-python loaded exactly as the engine loads it
and (b) through a live `llamaql serve` over graphql-transport-ws, alternating which side
goes first each round. Reports decode tokens/s after the first token, time to first token,
and the server/raw ratios (median and spread over the rounds).

Each server round sends to a new conversation, whose prompt the engine may reuse only
as far as the shared system-prompt start (KV is never shared between conversations).
The raw side reuses no more than that either, so both evaluate the same prompt tokens
and the TTFT gap is what the request path adds (`raw_reuses_whole_prompt` restores the
earlier comparison, where raw evaluated one prompt token and the server about twenty).
"""

from __future__ import annotations

import os
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.client import StreamTiming, WsSession, create_conversation, graphql_http
from bench.common import Result, ms, spread, utc_stamp
from bench.probe import ttft_probe
from bench.profile import CpuMeter, PySpy, summarize
from bench.raw import RawTiming, RawWorker
from bench.server import ServerProcess
from llamaql.config import Config

# A prompt the default model answers at length without an end-of-turn token, so both
# sides generate exactly max_tokens (the figures say when they did not).
STREAM_PROMPT = "Write a very long story about a dragon who learns to bake bread."
MODEL_QUERY = "{ model { name backend contextSize gpuLayers } }"


@dataclass(frozen=True, slots=True)
class StreamParams:
    rounds: int = 5
    warmup_rounds: int = 1
    max_tokens: int = 256
    seed: int = 42
    profile_dir: Path | None = None  # py-spy the server into this folder when set
    raw_reuses_whole_prompt: bool = False  # else only what the server may reuse


SMOKE = StreamParams(rounds=1, warmup_rounds=0, max_tokens=8)


def sampling(params: StreamParams) -> dict[str, Any]:
    """GraphQL GenerationOptionsInput for a greedy, seeded, fixed-length answer."""
    return {"temperature": 0.0, "seed": params.seed, "maxTokens": params.max_tokens}


def _raw_row(timing: RawTiming) -> dict[str, Any]:
    return {
        "ttft_ms": _r(ms(timing.ttft_s)),
        "decode_tps": _r(timing.decode_tps()),
        "completion_tokens": timing.completion_tokens,
        "prompt_tokens": timing.prompt_tokens,
        "cached_prompt_tokens": timing.cached_prompt_tokens,
    }


def _server_row(timing: StreamTiming) -> dict[str, Any]:
    usage = timing.usage or {}
    return {
        "ttft_ms": _r(ms(timing.ttft_s)) if timing.ttft_s is not None else None,
        "queued_ms": _r(ms(timing.queued_s)) if timing.queued_s is not None else None,
        "decode_tps": _r(timing.decode_tps()),
        "completion_tokens": timing.completion_tokens,
        "prompt_tokens": usage.get("promptTokens"),
        "cached_prompt_tokens": usage.get("cachedPromptTokens"),
        "deltas": len(timing.delta_times),
        "server_reported_tps": usage.get("tokensPerSecond"),
        "server_reported_prompt_ms": usage.get("promptMs"),
        "failed": timing.failed_code,
    }


def _row(
    index: int, params: StreamParams, raw_first: bool, raw: RawTiming, server: StreamTiming
) -> dict[str, Any]:
    raw_row, server_row = _raw_row(raw), _server_row(server)
    return {
        "round": index + 1,
        "warmup": index < params.warmup_rounds,
        "first": "raw" if raw_first else "server",
        "raw": raw_row,
        "server": server_row,
        "decode_ratio": _ratio(server_row["decode_tps"], raw_row["decode_tps"]),
        "ttft_ratio": _ratio(server_row["ttft_ms"], raw_row["ttft_ms"]),
        "ttft_gap_ms": _gap(server_row["ttft_ms"], raw_row["ttft_ms"]),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _gap(server: float | None, raw: float | None) -> float | None:
    return None if server is None or raw is None else round(server - raw, 3)


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if not top or not bottom else round(top / bottom, 4)


class _Rounds:
    """Alternates raw and server generations, metering each side's CPU when measured."""

    def __init__(
        self,
        raw: RawWorker,
        server: ServerProcess,
        http: httpx.AsyncClient,
        ws: WsSession,
        params: StreamParams,
        tokens: list[int],
        reuse_at_most: int | None,
    ) -> None:
        self.raw, self.server, self.http, self.ws = raw, server, http, ws
        self.params, self.tokens, self.reuse_at_most = params, tokens, reuse_at_most
        self.raw_cpu, self.server_cpu = CpuMeter(os.getpid()), CpuMeter(server.pid)
        self.client_cpu = CpuMeter(os.getpid())  # the bench's own client, while streaming
        self.profile: dict[str, Any] | None = None

    async def raw_side(self, measured: bool) -> RawTiming:
        p = self.params
        with self.raw_cpu if measured else nullcontext():
            return await self.raw.generate(self.tokens, p.max_tokens, p.seed, self.reuse_at_most)

    async def server_side(self, measured: bool) -> StreamTiming:
        url, user = self.server.http_url, self.ws.user
        conversation = await create_conversation(self.http, url, user, "bench stream")
        with (
            self.server_cpu if measured else nullcontext(),
            self.client_cpu if measured else nullcontext(),
        ):
            return await self.ws.send_message(conversation, STREAM_PROMPT, sampling(self.params))

    async def run(self) -> list[dict[str, Any]]:
        p, rows = self.params, []
        spy: PySpy | None = None
        for index in range(p.warmup_rounds + p.rounds):
            measured = index >= p.warmup_rounds
            if measured and spy is None and p.profile_dir is not None:
                spy = PySpy(self.server.pid, p.profile_dir / f"serve-pyspy-{utc_stamp()}.txt")
                await spy.start()
            raw_first = index % 2 == 0
            a = await self.raw_side(measured) if raw_first else None
            b = await self.server_side(measured)
            a = a or await self.raw_side(measured)
            rows.append(_row(index, p, raw_first, a, b))
        if spy is not None:
            await spy.stop()
            self.profile = {"file": str(spy.output), "threads": summarize(spy.output)}
        return rows


async def run(settings: Config, params: StreamParams) -> Result:
    described = {**asdict(params), "profile_dir": str(params.profile_dir or "") or None}
    result = Result("stream_vs_raw", params={**described, "prompt": STREAM_PROMPT})
    raw = RawWorker()
    probe: dict[str, Any] | None = None
    try:
        model_info = (await raw.load(settings)).describe()
        async with (
            ServerProcess(settings) as server,
            httpx.AsyncClient(timeout=30) as http,
            WsSession(server.ws_url, str(uuid.uuid4())) as ws,
        ):
            model = await graphql_http(http, server.http_url, ws.user, MODEL_QUERY)
            result.params["server_model"] = model["model"]
            result.params["raw_model"] = model_info
            tokens = raw.model.prompt_tokens(settings.chat.system_prompt, STREAM_PROMPT)
            reuse = None
            if not params.raw_reuses_whole_prompt:
                reuse = raw.model.shared_prefix_tokens(settings)
                # The server evaluates the shared start when it starts; so does raw, here.
                await raw.generate(tokens, 1, params.seed, reuse)
            result.params["raw_reuses_at_most"] = reuse
            rounds = _Rounds(raw, server, http, ws, params, tokens, reuse)
            rows = await rounds.run()
            if params.profile_dir is not None:
                probe = await ttft_probe(
                    server, http, ws, STREAM_PROMPT, profile_dir=params.profile_dir
                )
    finally:
        await raw.close()
    result.figures = _figures(rows)
    tokens_made = sum(row["raw"]["completion_tokens"] for row in rows if not row["warmup"])
    served = sum(row["server"]["completion_tokens"] for row in rows if not row["warmup"])
    result.figures["cpu"] = {
        "raw": rounds.raw_cpu.report(tokens_made),
        "server": rounds.server_cpu.report(served),
        "client_while_streaming": rounds.client_cpu.report(served),
    }
    if rounds.profile is not None:
        result.figures["profile"] = {"decode": rounds.profile, "ttft_probe": probe}
    result.summary = _summary(result.figures)
    return result


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [row for row in rows if not row["warmup"]]

    def column(side: str, key: str) -> list[float]:
        return [row[side][key] for row in measured if row[side][key] is not None]

    ratios = {
        key: [row[key] for row in measured if row[key] is not None]
        for key in ("decode_ratio", "ttft_ratio", "ttft_gap_ms")
    }
    return {
        "raw": {
            "decode_tps": spread(column("raw", "decode_tps")),
            "ttft_ms": spread(column("raw", "ttft_ms")),
        },
        "server": {
            "decode_tps": spread(column("server", "decode_tps")),
            "ttft_ms": spread(column("server", "ttft_ms")),
            "queued_ms": spread(column("server", "queued_ms")),
            "engine_prompt_ms": spread(column("server", "server_reported_prompt_ms")),
            "engine_tps": spread(column("server", "server_reported_tps")),
        },
        "decode_ratio_server_over_raw": spread(ratios["decode_ratio"]),
        "ttft_ratio_server_over_raw": spread(ratios["ttft_ratio"]),
        "ttft_gap_ms_server_minus_raw": spread(ratios["ttft_gap_ms"]),
        "same_prompt_tokens_evaluated": all(
            row["raw"]["prompt_tokens"] - row["raw"]["cached_prompt_tokens"]
            == (row["server"]["prompt_tokens"] or 0) - (row["server"]["cached_prompt_tokens"] or 0)
            for row in measured
        ),
        "token_counts_match": all(
            row["raw"]["completion_tokens"] == row["server"]["completion_tokens"]
            for row in measured
        ),
        "rounds": rows,
    }


def _summary(figures: dict[str, Any]) -> str:
    def med(path: dict[str, Any]) -> Any:
        return path["median"]

    raw, server = figures["raw"], figures["server"]
    ratios = figures["decode_ratio_server_over_raw"]["median"]
    ttft_ratio = figures["ttft_ratio_server_over_raw"]["median"]
    gap = figures["ttft_gap_ms_server_minus_raw"]
    return (
        f"stream_vs_raw: decode raw {med(raw['decode_tps'])} tok/s vs server "
        f"{med(server['decode_tps'])} tok/s (ratio {ratios}); TTFT raw "
        f"{med(raw['ttft_ms'])} ms vs server {med(server['ttft_ms'])} ms (ratio {ttft_ratio}; "
        f"server - raw {gap['median']} ms, {gap['min']} to {gap['max']}); "
        f"same prompt tokens evaluated: {figures['same_prompt_tokens_evaluated']}; "
        f"token counts match: {figures['token_counts_match']}"
    )
