"""One reply streamed from the server into its job.

The job (engine/jobs.py, shared with the in-process engine) coalesces text for the event
loop and carries the final event. Cancelling the task that runs `stream_reply` leaves
the `async with` around the response, which closes the upstream connection: the server
sees the client go and stops generating.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from llamaql.engine.jobs import Job
from llamaql.engine.remote.server import check_response
from llamaql.engine.remote.sse import ServerUsage, StreamFormatError, parse_chunk, sse_data
from llamaql.ports.engine import (
    EngineError,
    EngineUnavailableError,
    FinishReason,
    GenerationResult,
    Usage,
)

logger = logging.getLogger(__name__)


@dataclass
class _Progress:
    """What has come back so far, and when."""

    began: float = field(default_factory=time.perf_counter)
    first_text: float | None = None
    parts: list[str] = field(default_factory=list)
    pieces: int = 0
    finish: str | None = None
    usage: ServerUsage = field(default_factory=ServerUsage)

    def result(self, job: Job, reason: FinishReason) -> GenerationResult:
        """The reply so far; the server's figures where it gave them, else measured here
        (prompt tokens: the count the budget used; completion tokens: text pieces)."""
        ended = time.perf_counter()
        first = self.first_text or ended
        said = self.usage
        completion = said.get("completion_tokens")
        if completion is None:
            completion = self.pieces
        generation_ms = said.get("generation_ms")
        if generation_ms is None:
            generation_ms = (ended - first) * 1000.0
        speed = completion * 1000.0 / generation_ms if completion and generation_ms else 0.0
        measured = Usage(
            prompt_tokens=len(job.prompt.tokens),
            completion_tokens=completion,
            prompt_ms=(first - self.began) * 1000.0,
            generation_ms=generation_ms,
            tokens_per_second=speed,
        )
        return GenerationResult(
            text="".join(self.parts),
            finish_reason=reason,
            usage=replace(measured, **said.figures),
            dropped_messages=job.prompt.dropped_messages,
        )


async def stream_reply(
    job: Job,
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    reached: Callable[[bool], None] = lambda _answered: None,
) -> None:
    """Stream one reply into `job`, which always ends finished or failed: cancelled (the
    task is cancelled) with its text so far, failed when the server cannot be reached,
    refuses, or ends the stream before the reply ends. `reached` is told whether the
    server answered (any HTTP response) or could not be reached."""
    progress = _Progress()
    try:
        await _read(job, client, url, body, progress, reached)
    except asyncio.CancelledError:
        reason: FinishReason = "cancelled" if progress.finish is None else _reason(progress)
        job.finish(progress.result(job, reason))
        raise
    except httpx.HTTPError as exc:
        reached(False)
        job.fail(EngineUnavailableError(f"the engine's stream broke: {type(exc).__name__}"))
        return
    except StreamFormatError as exc:
        job.fail(EngineError(f"the engine's stream is malformed: {exc}"))
        return
    except EngineError as exc:
        job.fail(exc)
        return
    if progress.finish is None:
        job.fail(EngineUnavailableError("the engine's stream ended before the reply did"))
        return
    job.finish(progress.result(job, _reason(progress)))


def _reason(progress: _Progress) -> FinishReason:
    return "length" if progress.finish == "length" else "stop"


async def _read(
    job: Job,
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    progress: _Progress,
    reached: Callable[[bool], None],
) -> None:
    async with client.stream("POST", url, json=body) as response:
        reached(True)
        if response.status_code != 200:
            await response.aread()
            check_response(response, "streaming a reply")
        async for data in sse_data(response.aiter_lines()):
            chunk = parse_chunk(data)
            if chunk.error is not None:
                raise EngineError(f"the engine stopped the reply: {chunk.error}")
            if chunk.text:
                if progress.first_text is None:
                    progress.first_text = time.perf_counter()
                progress.parts.append(chunk.text)
                progress.pieces += 1
                job.post_text(chunk.text)
            if chunk.finish_reason is not None:
                progress.finish = chunk.finish_reason
            if chunk.usage is not None:
                progress.usage = progress.usage.merged(chunk.usage)
