"""An OpenAI-compatible chat stream, read: server-sent events into typed chunks.

The stream is `text/event-stream` (`data: {json}` events separated by blank lines, `:`
comments as keep-alives, `data: [DONE]` at the end). Each chunk may carry reply text,
a finish reason, `usage` (with `stream_options.include_usage`) and llama-server's
`timings`; an `error` object mid-stream means the server gave up on the reply.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from llamaql.ports.values import USAGE_FIELDS

DONE = "[DONE]"


class StreamFormatError(ValueError):
    """An event that is not a chat completion chunk; the message says what was wrong."""


@dataclass(frozen=True, slots=True, init=False)
class ServerUsage:
    """Those of a reply's usage figures (values.Usage, by name) that the server gave."""

    figures: Mapping[str, Any]

    def __init__(self, **figures: int | float | None) -> None:
        unknown = figures.keys() - set(USAGE_FIELDS)
        if unknown:
            raise TypeError(f"not usage figures: {sorted(unknown)}; known: {USAGE_FIELDS}")
        given = {name: value for name, value in figures.items() if value is not None}
        object.__setattr__(self, "figures", given)

    def get(self, name: str) -> Any:
        """The figure the server gave, or None."""
        return self.figures.get(name)

    def merged(self, later: ServerUsage) -> ServerUsage:
        """These figures, overridden by every figure `later` has."""
        return ServerUsage(**{**self.figures, **later.figures})


@dataclass(frozen=True, slots=True)
class StreamChunk:
    text: str = ""
    finish_reason: str | None = None
    usage: ServerUsage | None = None
    error: str | None = None


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each event, in order, up to `[DONE]` (not included).

    Follows the event-stream rules: `data:` lines of one event are joined with newlines,
    one space after the colon is dropped, comments and other fields are skipped, and an
    event is dispatched at the blank line that ends it (one cut off by the end of the
    stream is dropped, as browsers do).
    """
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                event, data = "\n".join(data), []
                if event == DONE:
                    return
                yield event
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)


def parse_chunk(data: str) -> StreamChunk:
    """One event's JSON as a chunk; StreamFormatError when it is not one."""
    try:
        body = json.loads(data)
    except json.JSONDecodeError as exc:
        raise StreamFormatError(f"an event is not JSON: {data[:80]!r}") from exc
    if not isinstance(body, dict):
        raise StreamFormatError(f"an event is not a JSON object: {data[:80]!r}")
    if body.get("error"):
        return StreamChunk(error=_error_message(body["error"]))
    text, finish = "", None
    choices = body.get("choices") or []
    if not isinstance(choices, list):
        raise StreamFormatError("an event's choices is not a list")
    for choice in choices[:1]:  # n = 1: one choice
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        text = content if isinstance(content, str) else ""
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        finish = reason if isinstance(reason, str) and reason else None
    return StreamChunk(text=text, finish_reason=finish, usage=_usage(body))


def _error_message(error: object) -> str:
    if isinstance(error, Mapping):
        return str(error.get("message") or error.get("type") or "unknown error")[:300]
    return str(error)[:300]


def _usage(body: Mapping[str, Any]) -> ServerUsage | None:
    usage = _mapping(body.get("usage"))
    timings = _mapping(body.get("timings"))
    if not usage and not timings:
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return ServerUsage(
        prompt_tokens=_int(usage.get("prompt_tokens")),
        cached_prompt_tokens=_int(cached if cached is not None else timings.get("cache_n")),
        completion_tokens=_int(usage.get("completion_tokens")),
        prompt_ms=_float(timings.get("prompt_ms")),
        generation_ms=_float(timings.get("predicted_ms")),
        tokens_per_second=_float(timings.get("predicted_per_second")),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
