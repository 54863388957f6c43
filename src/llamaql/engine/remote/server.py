"""What the remote server is, and how a prompt's tokens are counted on it.

`discover` asks the server once (its model list, llama-server's `/props`, vLLM's
`max_model_len`, llama-cpp-python's `/extras/tokenize`). Counting then goes to the
server's own tokenizer, so the context budget is the model's:

- llama-server: `/apply-template` renders the messages with the model's template, then
  `/tokenize` counts them: exact.
- vLLM: `/tokenize` with the messages renders and counts at once: exact.
- llama-cpp-python: `/extras/tokenize` counts a ChatML rendering (exact for ChatML
  models, such as the default one; an estimate for others).
- anything else (Ollama, say): an estimate of one token per 3 bytes of the ChatML
  rendering, more than most text takes, so the budget errs towards dropping a turn.

Counting runs on a worker thread (the budget is a search over several renderings), so
it uses a blocking client.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from llamaql.engine.remote.listing import RemoteModel, listed_models
from llamaql.engine.remote.request import chat_messages
from llamaql.ports.engine import ChatMessage, EngineError, EngineUnavailableError

BYTES_PER_TOKEN_ESTIMATE = 3


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """`kind`: llama-server, vllm, llama-cpp-python or openai-compatible; `model`: the
    id asked for (None: the server's default); `context_size`: per request, if told;
    `listed`: the models the server listed then."""

    kind: str
    model: str | None
    context_size: int | None
    listed: tuple[RemoteModel, ...] = ()


def server_root(api_url: str) -> str:
    """`http://host:8080/v1` -> `http://host:8080`: where the non-OpenAI endpoints live."""
    parts = urlsplit(api_url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def check_response(response: httpx.Response, what: str) -> Any:
    """The JSON of a successful response; server errors and a refused API key are
    EngineUnavailableError (retryable), other refusals EngineError. Never echoes the
    request (the API key)."""
    if response.status_code >= 500 or response.status_code == 429:
        raise EngineUnavailableError(f"{what}: the engine answered HTTP {response.status_code}")
    if response.status_code in (401, 403):
        # Misconfigured here, not the client's fault: to clients the engine is unavailable.
        raise EngineUnavailableError(
            f"{what}: the engine refused the API key (HTTP {response.status_code})"
        )
    if response.status_code != 200:
        raise EngineError(f"{what}: the engine answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise EngineError(f"{what}: the engine's answer is not JSON") from exc


async def discover(client: httpx.AsyncClient, api_url: str, model: str | None) -> ServerFacts:
    """Ask the server what it is; EngineUnavailableError when it cannot be reached."""
    root = server_root(api_url)
    try:
        listed = listed_models(
            check_response(await client.get(f"{api_url}/models"), "listing models")
        )
        if model is None and listed:
            model = listed[0].name
        entry = next((m for m in listed if m.name == model), None)
        settings = _json_object(await client.get(f"{root}/props")).get(
            "default_generation_settings"
        )
        if isinstance(settings, dict):
            return ServerFacts("llama-server", model, _positive(settings.get("n_ctx")), listed)
        if entry is not None and entry.context_size is not None:
            return ServerFacts("vllm", model, entry.context_size, listed)
        probe = await client.post(f"{root}/extras/tokenize", json={"input": "probe"})
        kind = "llama-cpp-python" if probe.status_code == 200 else "openai-compatible"
        return ServerFacts(kind, model, None, listed)
    except httpx.HTTPError as exc:
        raise EngineUnavailableError(f"the engine at {api_url} cannot be reached: {exc}") from exc


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """A successful answer's JSON object, else {} (a path the server does not have)."""
    if response.status_code != 200:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def chatml(messages: Sequence[ChatMessage]) -> str:
    """The messages in ChatML, ready for the assistant's turn."""
    turns = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


class TokenCounter(Protocol):
    """Renders and tokenizes messages as the server would: (prompt text, token ids)."""

    probes: bool  # True: counting never touches the server, so prepare checks it is up

    def encode(
        self, messages: Sequence[ChatMessage], model: str | None
    ) -> tuple[str, list[int]]: ...


class _ServerCounter:
    """Counts on the server; `model` (None: the server's default) goes in each body, so
    a server with several models (llama-server's router, llama-cpp-python's config
    file, vLLM) counts with that model's tokenizer, and one with a single model ignores it."""

    probes = False

    def encode(self, messages: Sequence[ChatMessage], model: str | None) -> tuple[str, list[int]]:
        raise NotImplementedError

    def __init__(self, client: httpx.Client, api_url: str) -> None:
        self._client = client
        self._root = server_root(api_url)

    def _post(self, path: str, body: dict[str, Any], model: str | None) -> Any:
        if model:
            body = {**body, "model": model}
        try:
            response = self._client.post(f"{self._root}{path}", json=body)
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"counting tokens: {exc}") from exc
        return check_response(response, "counting tokens")

    def _tokens(self, body: Any) -> list[int]:
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(tokens, list):
            raise EngineError("counting tokens: the engine's answer has no token list")
        # llama-server gives {"id": n, "piece": s} items when asked for pieces.
        return [int(t["id"]) if isinstance(t, dict) else int(t) for t in tokens]


class LlamaServerCounter(_ServerCounter):
    def encode(self, messages: Sequence[ChatMessage], model: str | None) -> tuple[str, list[int]]:
        rendered = self._post("/apply-template", {"messages": chat_messages(messages)}, model)
        prompt = str(rendered.get("prompt", "")) if isinstance(rendered, dict) else ""
        body = {"content": prompt, "add_special": True, "parse_special": True}
        return prompt, self._tokens(self._post("/tokenize", body, model))


class VllmCounter(_ServerCounter):
    def encode(self, messages: Sequence[ChatMessage], model: str | None) -> tuple[str, list[int]]:
        body: dict[str, Any] = {"messages": chat_messages(messages), "add_generation_prompt": True}
        return chatml(messages), self._tokens(self._post("/tokenize", body, model))


class LlamaCppPythonCounter(_ServerCounter):
    def encode(self, messages: Sequence[ChatMessage], model: str | None) -> tuple[str, list[int]]:
        text = chatml(messages)
        return text, self._tokens(self._post("/extras/tokenize", {"input": text}, model))


class EstimatedCounter:
    """No tokenizer on the server: placeholder ids, one per estimated token."""

    probes = True

    def encode(self, messages: Sequence[ChatMessage], model: str | None) -> tuple[str, list[int]]:
        text = chatml(messages)
        return text, [0] * math.ceil(len(text.encode()) / BYTES_PER_TOKEN_ESTIMATE)


def token_counter(client: httpx.Client, facts: ServerFacts, api_url: str) -> TokenCounter:
    counters: dict[str, type[_ServerCounter]] = {
        "llama-server": LlamaServerCounter,
        "vllm": VllmCounter,
        "llama-cpp-python": LlamaCppPythonCounter,
    }
    counter = counters.get(facts.kind)
    return counter(client, api_url) if counter is not None else EstimatedCounter()
