"""A remote llamaql against llama.cpp's own `llama-server` (built by `make llama-server`;
skipped when it is not): the context from `/props`, exact counts through
`/apply-template` + `/tokenize`, usage and timings from the stream, and a cancel that
frees the server's slot."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.integration.chat.live import (
    DEFAULT_MODEL_PATH,
    LONG_OPTIONS,
    LONG_TEXT,
    REPO_ROOT,
    Http,
    Server,
    connect,
    free_port,
    new_user,
    require_model,
    stopped_cleanly,
)
from tests.integration.remote.conftest import remote_server
from tests.integration.remote.upstream import API_KEY

pytestmark = [pytest.mark.model, pytest.mark.slow]

BINARY = REPO_ROOT / ".build" / "llama-server" / "bin" / "llama-server"
SLOT_CONTEXT = 1024
SLOTS = 2
USAGE = """query($id: ID!, $text: String) {
  contextUsage(conversationId: $id, text: $text) { promptTokens fits }
}"""
REPLIES = """query($id: ID!) { conversation(id: $id) { messages(first: 10) { edges { node {
  role status usage { promptTokens cachedPromptTokens completionTokens promptMs generationMs
  tokensPerSecond } } } } } }"""


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not BINARY.is_file():
        pytest.skip(f"llama-server is not built ({BINARY}): run `make llama-server`")
    require_model()
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "llama-server.log"
    command = [
        str(BINARY),
        *("-m", str(DEFAULT_MODEL_PATH), "-t", "1", "--no-repack"),
        *("-np", str(SLOTS), "-c", str(SLOTS * SLOT_CONTEXT), "--metrics"),
        *("--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def on_llama_server(
    tmp_path_factory: pytest.TempPathFactory, llama_server: str
) -> Iterator[Server]:
    server = remote_server(
        tmp_path_factory.mktemp("remote-llama-server"),
        f"{llama_server}/v1",
        LLAMAQL_PARALLEL=str(SLOTS),
        LLAMAQL_CONTEXT_SIZE="4096",  # more than a slot: the server's n_ctx caps it
    )
    yield server
    stopped_cleanly(server)


async def test_context_counts_usage_and_timings_come_from_llama_server(
    on_llama_server: Server,
) -> None:
    user = new_user()
    http = Http(on_llama_server, user)
    info = (await http.data("{ model { contextSize engineServer } }"))["model"]
    assert info == {"contextSize": SLOT_CONTEXT, "engineServer": "llama-server"}
    cid = await http.create_conversation(options={"temperature": 0.0, "maxTokens": 16})
    async with connect(on_llama_server, user) as ws:
        for text in ("What is the capital of France?", "And of Italy?"):
            usage = (await http.data(USAGE, id=cid, text=text))["contextUsage"]
            done = (await ws.stream(await ws.send_message(cid, text)))[-1]
            assert done["__typename"] == "MessageCompleted", done
            assert done["message"]["usage"]["promptTokens"] == usage["promptTokens"]
    edges = (await http.data(REPLIES, id=cid))["conversation"]["messages"]["edges"]
    replies = [e["node"]["usage"] for e in edges if e["node"]["role"] == "ASSISTANT"]
    assert len(replies) == 2
    for reply in replies:
        assert reply["completionTokens"] > 0
        assert reply["promptMs"] > 0
        assert reply["tokensPerSecond"] > 0
    # The second turn reuses the slot's cache of the first (llama-server's cache_n).
    assert replies[1]["cachedPromptTokens"] > 0


async def _processing(llama_server: str) -> float:
    async with httpx.AsyncClient() as client:
        page = await client.get(
            f"{llama_server}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}
        )
    line = next(x for x in page.text.splitlines() if x.startswith("llamacpp:requests_processing"))
    return float(line.split()[-1])


async def test_cancel_frees_the_llama_server_slot(
    on_llama_server: Server, llama_server: str
) -> None:
    user = new_user()
    http = Http(on_llama_server, user)
    cid = await http.create_conversation()
    async with connect(on_llama_server, user) as ws:
        op = await ws.send_message(cid, LONG_TEXT, LONG_OPTIONS)
        events = await ws.until(op, "TokenDelta")
        assert await _processing(llama_server) == 1
        await http.cancel(events[0]["assistantMessageId"])
        done = (await ws.stream(op))[-1]
    assert done["message"]["status"] == "CANCELLED"
    for _ in range(200):
        if await _processing(llama_server) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _processing(llama_server) == 0
    assert done["message"]["usage"]["completionTokens"] < LONG_OPTIONS["maxTokens"]
