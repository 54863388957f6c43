"""The peer benchmark's reference: llama.cpp's own `llama-server`, built by
`make llama-server` from the llama.cpp that the pinned llama-cpp-python vendors, run as a
subprocess on a free loopback port and spoken to through its OpenAI-compatible
`/v1/chat/completions` with `stream: true`.

Each streamed reply is timed into the same `StreamTiming` the GraphQL client fills, with
the usage llama-server reports (completion, prompt and cached prompt tokens) under the
names llamaql's `Usage` uses, so both sides go through the same figures.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.client import StreamTiming
from bench.common import REPO_ROOT
from bench.server import ChildServer

BINARY = REPO_ROOT / ".build" / "llama-server" / "bin" / "llama-server"
STOP_TIMEOUT_S = 10.0
# llamaql's greedy chain is argmax alone; llama-server's default chain at temperature 0
# still runs top-k 40, top-p, min-p and the others first. This chain is top-k 1 and then
# its final pick, which takes the argmax as well.
GREEDY = {"temperature": 0.0, "top_k": 1, "samplers": ["top_k"]}
SLOTS_LINE = re.compile(r"initializing, n_slots = (\d+), n_ctx_slot = (\d+), kv_unified = '(\w+)'")


class LlamaServerMissing(RuntimeError):
    """The binary is not built; the message says how to build it."""


def require_binary(binary: Path = BINARY) -> Path:
    if not binary.is_file():
        raise LlamaServerMissing(
            f"llama-server is not built ({binary} missing): run `make llama-server` "
            "(builds it once from the llama-cpp-python sdist, about 6.5 minutes on 2 cores)"
        )
    return binary


@dataclass(frozen=True, slots=True)
class LlamaServerConfig:
    """What `llama-server` is started with; `command()` is recorded with the results."""

    model: Path
    threads: int
    parallel: int
    slot_context: int
    n_batch: int

    def command(self, binary: Path, port: int, log_file: Path) -> list[str]:
        # --no-repack: the AMX repacking path crashes on these CPUs (FINDINGS.md), and
        # llamaql loads the model without it too (use_extra_bufts off).
        return [
            str(binary),
            *("-m", str(self.model), "-t", str(self.threads), "--no-repack"),
            *("-np", str(self.parallel), "-c", str(self.parallel * self.slot_context)),
            *("-b", str(self.n_batch), "-ub", str(self.n_batch)),
            *("--host", "127.0.0.1", "--port", str(port), "--no-webui"),
            *("--log-file", str(log_file)),
        ]


class LlamaServerProcess(ChildServer):
    """`async with LlamaServerProcess(config) as server:` -> a ready llama-server; killed
    on exit, whatever happened (SIGTERM, then SIGKILL after STOP_TIMEOUT_S)."""

    name = "llama-server"
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(self, config: LlamaServerConfig, binary: Path = BINARY) -> None:
        self.config = config
        self.binary = require_binary(binary)
        super().__init__("llama-server-bench-", "llama-server.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return self.config.command(self.binary, self.port, self.log_path)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with (self._tmp / "stdout.log").open("wb") as out:
            return subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    async def _ready(self, client: httpx.AsyncClient) -> bool:
        return (await client.get(f"{self.url}/health")).status_code == 200


async def stream_chat(
    http: httpx.AsyncClient,
    url: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    seed: int,
) -> StreamTiming:
    """One streamed, greedy (`GREEDY`) chat completion, timed chunk by chunk. It stops at
    the end-of-turn token as llamaql does (no ignore_eos): the figures report both sides'
    token counts."""
    body = {
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        **GREEDY,
        "seed": seed,
    }
    timing = StreamTiming(sent_at=time.perf_counter())
    async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            timing.failed_code = f"HTTP_{response.status_code}"
            timing.finished_at = time.perf_counter()
            return timing
        async for line in response.aiter_lines():
            now = time.perf_counter()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            _record_chunk(timing, json.loads(line[len("data: ") :]), now)
    timing.finished_at = timing.finished_at or time.perf_counter()
    count_like_llamaql(timing)
    return timing


def count_like_llamaql(timing: StreamTiming) -> None:
    """llama-server's `completion_tokens` counts every token it sampled, the end-of-turn
    token included when a reply stops there (finish_reason "stop": the bench sends no
    stop strings); llamaql's `completionTokens` leaves that token out. So a reply that
    stopped gets one less, and llama-server's own figure stays as
    `completionTokensReported` (a reply cut at `max_tokens` has no such token)."""
    usage = timing.usage
    if usage and timing.finish_reason == "stop" and usage.get("completionTokens"):
        usage["completionTokensReported"] = usage["completionTokens"]
        usage["completionTokens"] -= 1


def slot_layout(log: str) -> dict[str, Any] | None:
    """The slots llama-server says it made (its "initializing, n_slots = ..." log line):
    count, context per slot and whether the KV is one unified pool; None if not logged."""
    found = SLOTS_LINE.search(log)
    if found is None:
        return None
    return {
        "n_slots": int(found[1]),
        "n_ctx_slot": int(found[2]),
        "kv_unified": found[3] == "true",
    }


def _record_chunk(timing: StreamTiming, chunk: dict[str, Any], now: float) -> None:
    if "error" in chunk:
        timing.failed_code = "LLAMA_SERVER_ERROR"
        timing.finished_at = now
        return
    for choice in chunk.get("choices") or []:
        text = (choice.get("delta") or {}).get("content")
        if text:
            timing.delta_times.append(now)
            timing.text += text
        if choice.get("finish_reason"):
            timing.finish_reason = str(choice["finish_reason"])
    usage = chunk.get("usage")
    if usage:
        timing.usage = {
            "completionTokens": usage.get("completion_tokens"),
            "promptTokens": usage.get("prompt_tokens"),
            "cachedPromptTokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        }
        timing.finished_at = now
