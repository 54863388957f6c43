"""The default model fully offloaded to Vulkan answers like the CPU does.

The Vulkan half runs in a subprocess: GGML_VK_VISIBLE_DEVICES must be set before
llama.cpp initialises its Vulkan backend, and the CPU-only session engine of this test
process has initialised it already. Mesa's lavapipe is a CPU-type Vulkan device that
ggml skips unless listed there, so on machines without a GPU this still runs for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests.integration.engine.conftest import fresh_requester

from llamaql.config import DEFAULT_SYSTEM_PROMPT
from llamaql.engine.local.devices import backend_names
from llamaql.engine.local.engine import LlamaEngine
from llamaql.ports.engine import ChatMessage, GenerationResult, SamplingOptions

pytestmark = [pytest.mark.model, pytest.mark.vulkan, pytest.mark.slow]
QUESTION = "What is the capital of France?"
MAX_TOKENS = 8  # lavapipe runs at a few tokens per second

CHILD = """
import asyncio, json, sys
from llamaql.engine.local.devices import list_devices, offload_devices
from llamaql.engine.local.engine import LlamaEngine
from llamaql.ports.engine import ChatMessage, GenerationResult, Requester, SamplingOptions
from llamaql.config import load_config
from llamaql.container import shared_start

async def main():
    gpus = offload_devices(list_devices())
    if not gpus:
        print(json.dumps({"skip": "llama.cpp found no Vulkan device"}))
        return
    config = load_config(n_gpu_layers=-1, parallel=2, context_size=2048, kv_disk_mb=0)
    engine = LlamaEngine(config.engine, shared_start=shared_start(config.chat))
    await engine.start()
    try:
        options = SamplingOptions(temperature=0.0, max_tokens=int(sys.argv[3]))
        messages = [ChatMessage("system", sys.argv[1]), ChatMessage("user", sys.argv[2])]
        prompt = await engine.prepare(messages, options)
        handle = engine.submit(prompt, Requester("vulkan", "check"))
        result = [e async for e in handle.events()][-1]
        info = engine.info()
        print(json.dumps({
            "backend": info.backend, "device": info.device, "gpu_layers": info.gpu_layers,
            "text": result.text, "tokens_per_second": result.usage.tokens_per_second,
            "prompt_ms": result.usage.prompt_ms,
        }))
    finally:
        await engine.stop()

asyncio.run(main())
"""


def run_on_vulkan() -> dict[str, object]:
    env = {**os.environ, "GGML_VK_VISIBLE_DEVICES": os.environ.get("GGML_VK_VISIBLE_DEVICES", "0")}
    args = [DEFAULT_SYSTEM_PROMPT, QUESTION, str(MAX_TOKENS)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, f"Vulkan run failed:\n{done.stderr[-3000:]}"
    assert lines, f"the Vulkan run printed no result:\n{done.stderr[-3000:]}"
    return dict(json.loads(lines[-1]))


async def test_vulkan_greedy_answer_equals_cpu(engine: LlamaEngine) -> None:
    if "Vulkan" not in backend_names():
        pytest.skip("the installed llama-cpp-python has no Vulkan backend (see `make vulkan`)")
    vulkan = run_on_vulkan()
    if "skip" in vulkan:
        pytest.skip(str(vulkan["skip"]))
    options = SamplingOptions(temperature=0.0, max_tokens=MAX_TOKENS)
    messages = [ChatMessage("system", DEFAULT_SYSTEM_PROMPT), ChatMessage("user", QUESTION)]
    handle = engine.submit(await engine.prepare(messages, options), fresh_requester())
    cpu = [event async for event in handle.events()][-1]
    assert isinstance(cpu, GenerationResult)
    assert vulkan["backend"] == "vulkan"
    assert vulkan["gpu_layers"] == 31  # 30 blocks + the output layer: all of them
    assert vulkan["text"] == cpu.text == "The capital of France is Paris."
    print(f"vulkan on {vulkan['device']}: {vulkan['tokens_per_second']:.1f} tok/s")
