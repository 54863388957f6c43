"""What a reply asks the server for: the messages and the resolved sampling options as an
OpenAI-compatible `/chat/completions` body.

`temperature`, `top_p`, `max_tokens`, `seed` and `stop` are OpenAI's own; `top_k`,
`min_p` and `repeat_penalty` are the extensions llama-server and llama-cpp-python read,
and vLLM reads `top_k`, `min_p` and `repetition_penalty`. Each server ignores the names
it does not know (Ollama's OpenAI API reads only OpenAI's), so all are sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llamaql.ports.engine import ChatMessage, ResolvedOptions


def chat_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": message.role, "content": message.content} for message in messages]


def chat_body(
    messages: Sequence[ChatMessage], options: ResolvedOptions, *, model: str | None
) -> dict[str, Any]:
    """The streamed request for one reply, usage included at its end."""
    body: dict[str, Any] = {
        "messages": chat_messages(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "top_p": options.top_p,
        "top_k": options.top_k,
        "min_p": options.min_p,
        "repeat_penalty": options.repeat_penalty,
        "repetition_penalty": options.repeat_penalty,
    }
    if model:
        body["model"] = model
    if options.seed is not None:
        body["seed"] = options.seed
    if options.stop:
        body["stop"] = list(options.stop)
    return body
