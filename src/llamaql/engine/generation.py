"""Running one request on the model: prompt, sampling loop, stop rules, usage."""

from __future__ import annotations

import time

from llamaql.engine.jobs import Job
from llamaql.engine.runtime import ModelRuntime
from llamaql.engine.text import ReplyText
from llamaql.engine.types import FinishReason, GenerationResult, TextPiece, Usage


def run_job(runtime: ModelRuntime, job: Job, extra_stops: tuple[str, ...] = ()) -> GenerationResult:
    """Generate the reply for `job`, posting text pieces as they become final.

    Checks the cancel flag before every prompt batch and every token, so a cancelled
    request stops within one token. Exceptions propagate to the worker.
    """
    prompt = job.prompt
    started = time.perf_counter()
    cached = runtime.evaluate(prompt.tokens, lambda: job.cancelled)
    prompt_done = time.perf_counter()
    if cached is None:
        return _result(
            "", "cancelled", job, len(prompt.tokens), 0, 0, started, prompt_done, prompt_done
        )
    reply = ReplyText((*job.options.stop, *extra_stops))
    sampler = runtime.new_sampler(job.options)
    reason: FinishReason = "length"
    produced = 0
    try:
        while produced < prompt.max_tokens:
            if job.cancelled:
                reason = "cancelled"
                break
            token = sampler.sample()
            if runtime.is_eog(token):
                reason = "stop"
                break
            produced += 1
            piece = reply.push(runtime.token_bytes(token))
            if piece:
                job.post(TextPiece(piece))
            if reply.stopped:
                reason = "stop"
                break
            if produced < prompt.max_tokens:
                runtime.append(token)
    finally:
        sampler.close()
    tail = reply.finish()
    if tail:
        job.post(TextPiece(tail))
    return _result(
        reply.text,
        reason,
        job,
        len(prompt.tokens),
        cached,
        produced,
        started,
        prompt_done,
        time.perf_counter(),
    )


def _result(
    text: str,
    reason: FinishReason,
    job: Job,
    prompt_tokens: int,
    cached: int,
    produced: int,
    started: float,
    prompt_done: float,
    ended: float,
) -> GenerationResult:
    generation_s = ended - prompt_done
    usage = Usage(
        prompt_tokens=prompt_tokens,
        cached_prompt_tokens=cached,
        completion_tokens=produced,
        prompt_ms=(prompt_done - started) * 1000.0,
        generation_ms=generation_s * 1000.0,
        tokens_per_second=produced / generation_s if produced and generation_s > 0 else 0.0,
    )
    return GenerationResult(
        text=text, finish_reason=reason, usage=usage, dropped_messages=job.prompt.dropped_messages
    )
