"""A fake OpenAI-compatible server behind httpx.MockTransport, speaking like llama-server,
vLLM or a plain OpenAI-compatible server (no tokenizer): for the remote engine's unit
tests. It counts one token per whitespace-separated word and records every request."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from llamaql.engine.remote.server import chatml
from llamaql.ports.engine import ChatMessage


def sse(*chunks: dict[str, Any]) -> bytes:
    events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    return ("".join(events) + "data: [DONE]\n\n").encode()


def text_chunk(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def words(messages: list[dict[str, str]]) -> list[int]:
    rendered = chatml([ChatMessage(m["role"], m["content"]) for m in messages])  # type: ignore[arg-type]
    return list(range(len(rendered.split())))


@dataclass
class FakeOpenAIServer:
    """`kind`: llama-server, vllm or openai-compatible; `reply`: the streamed body;
    `hold`: when set, streams wait for it (a reply that is still being generated);
    `models`: the ids `/v1/models` lists (the first is the default); `down`: every
    request fails to connect."""

    kind: str = "llama-server"
    context: int = 1024
    reply: bytes = field(
        default_factory=lambda: sse(
            {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
            text_chunk("Hel"),
            text_chunk("lo"),
            {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "timings": {"cache_n": 3, "prompt_ms": 12.5, "predicted_ms": 40.0},
            },
            {
                "choices": [],
                "usage": {"prompt_tokens": 21, "completion_tokens": 2},
                "timings": {"predicted_per_second": 50.0},
            },
        )
    )
    hold: asyncio.Event | None = None
    models: list[str] = field(default_factory=lambda: ["fake-model"])
    down: bool = False
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    def _handle(self, request: httpx.Request) -> Any:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/v1/chat/completions":
            return self._stream()
        return self._answer(request)

    async def _stream(self) -> httpx.Response:
        if self.hold is not None:
            await self.hold.wait()
        return httpx.Response(
            200, content=self.reply, headers={"content-type": "text/event-stream"}
        )

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == "/v1/models":
            entries: list[dict[str, Any]] = [
                {"id": name, "object": "model"} for name in self.models
            ]
            if self.kind == "vllm":
                for entry in entries:
                    entry["max_model_len"] = self.context
            return httpx.Response(200, json={"object": "list", "data": entries})
        if self.kind == "llama-server":
            if path == "/props":
                return httpx.Response(
                    200, json={"default_generation_settings": {"n_ctx": self.context}}
                )
            if path == "/apply-template":
                messages = [ChatMessage(m["role"], m["content"]) for m in body["messages"]]
                return httpx.Response(200, json={"prompt": chatml(messages)})
            if path == "/tokenize":
                return httpx.Response(
                    200, json={"tokens": list(range(len(body["content"].split())))}
                )
        if self.kind == "vllm" and path == "/tokenize":
            return httpx.Response(200, json={"tokens": words(body["messages"])})
        return httpx.Response(404, json={"error": "not found"})
