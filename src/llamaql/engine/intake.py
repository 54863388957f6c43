"""What both engines do with a request before it runs, written once: fit its prompt into
the context (its options resolved by options.resolve_options), queue its job fairly;
and, at stop, end the jobs still waiting. The in-process engine (engine.py) and the
remote one (remote/engine.py) differ in how they count tokens and run a job, not here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from llamaql.engine.admission import AdmissionQueue
from llamaql.engine.budget import fit_prompt
from llamaql.engine.jobs import Job
from llamaql.ports.engine import (
    ChatMessage,
    GenerationResult,
    PreparedPrompt,
    Requester,
    ResolvedOptions,
)

Encode = Callable[[Sequence[ChatMessage]], tuple[str, list[int]]]
"""Renders messages with the chat template and tokenizes them: (text, tokens)."""


def kept_messages(messages: Sequence[ChatMessage], dropped: int) -> tuple[ChatMessage, ...]:
    """The messages fit_prompt kept: the leading system ones, then all but the `dropped`
    oldest of the rest."""
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    return (*messages[:head], *messages[head + dropped :])


def fit(
    messages: Sequence[ChatMessage],
    resolved: ResolvedOptions,
    *,
    encode: Encode,
    context_size: int,
    with_messages: bool = False,
) -> PreparedPrompt:
    """The prompt that fits with room for the reply (`options.max_tokens` is that room),
    with the fitted messages when the engine's server renders the template itself."""
    fitted = fit_prompt(
        messages, encode=encode, context_size=context_size, reply_tokens=resolved.max_tokens
    )
    return PreparedPrompt(
        text=fitted.text,
        tokens=fitted.tokens,
        dropped_messages=fitted.dropped_messages,
        options=replace(resolved, max_tokens=fitted.max_tokens),
        messages=kept_messages(messages, fitted.dropped_messages) if with_messages else (),
    )


def queue_job(
    queue: AdmissionQueue,
    prompt: PreparedPrompt,
    requester: Requester,
    *,
    stream_interval: float,
    background: bool,
    home: int | None = None,
) -> Job:
    """A job for the request, its events delivered to the running loop, queued; raises
    QueueFullError at once when the queue is full."""
    job = Job(
        prompt,
        requester,
        asyncio.get_running_loop(),
        stream_interval=stream_interval,
        background=background,
        home=home,
    )
    queue.put(job)
    return job


def end_waiting(queue: AdmissionQueue) -> None:
    """Close the queue: the jobs still waiting end as cancelled, with no text."""
    for job in queue.close():
        job.finish(GenerationResult(text="", finish_reason="cancelled"))
