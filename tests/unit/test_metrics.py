"""Metrics: engine load read when scraped, replies counted by outcome and usage."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from tests.fakes.engine import FakeEngine

from llamaql.api.enums import ErrorCode
from llamaql.persistence.models import MessageStatus
from llamaql.ports.engine import ChatMessage, Requester, SamplingOptions
from llamaql.services.metrics import OUTCOMES, Metrics


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_outcome_a_client_can_see_has_its_own_series_from_the_start() -> None:
    # FORBIDDEN refuses model pulls and deletes, never a chat request.
    chat_codes = {code.value for code in ErrorCode} - {ErrorCode.FORBIDDEN.value}
    assert set(OUTCOMES) == chat_codes | {
        MessageStatus.COMPLETE.value,
        MessageStatus.CANCELLED.value,
    }
    metrics = Metrics(CollectorRegistry(), engine=None)
    for outcome in OUTCOMES:
        assert value(metrics, "llamaql_chat_requests_total", outcome=outcome) == 0


def test_a_completed_reply_counts_its_tokens_and_timings() -> None:
    metrics = Metrics(CollectorRegistry(), engine=None)
    metrics.reply_ended("COMPLETE", completion_tokens=12, prompt_ms=300.0, tokens_per_second=40.0)
    metrics.reply_ended("COMPLETE", completion_tokens=3, prompt_ms=50.0, tokens_per_second=8.0)
    assert value(metrics, "llamaql_chat_requests_total", outcome="COMPLETE") == 2
    assert value(metrics, "llamaql_generated_tokens_total") == 15
    ttft = "llamaql_time_to_first_token_seconds"
    assert value(metrics, f"{ttft}_count") == 2
    assert value(metrics, f"{ttft}_sum") == pytest.approx(0.35)
    assert value(metrics, f"{ttft}_bucket", le="0.1") == 1
    speed = "llamaql_tokens_per_second"
    assert value(metrics, f"{speed}_bucket", le="10.0") == 1
    assert value(metrics, f"{speed}_bucket", le="50.0") == 2


def test_a_request_without_tokens_counts_only_its_outcome() -> None:
    metrics = Metrics(CollectorRegistry(), engine=None)
    metrics.reply_ended("QUEUE_FULL")
    metrics.reply_ended("CANCELLED", completion_tokens=0, prompt_ms=900.0)
    assert value(metrics, "llamaql_chat_requests_total", outcome="QUEUE_FULL") == 1
    assert value(metrics, "llamaql_chat_requests_total", outcome="CANCELLED") == 1
    assert value(metrics, "llamaql_generated_tokens_total") == 0
    assert value(metrics, "llamaql_time_to_first_token_seconds_count") == 0
    assert value(metrics, "llamaql_tokens_per_second_count") == 0


def test_an_unknown_outcome_is_counted_as_internal_never_as_a_new_label(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics(CollectorRegistry(), engine=None)
    metrics.reply_ended("user 42 said hello")
    assert value(metrics, "llamaql_chat_requests_total", outcome="INTERNAL") == 1
    assert value(metrics, "llamaql_chat_requests_total", outcome="user 42 said hello") is None
    assert "unknown outcome" in caplog.text


def test_apps_in_one_process_count_apart() -> None:
    one = Metrics(CollectorRegistry(), engine=None)
    other = Metrics(CollectorRegistry(), engine=None)
    one.reply_ended("COMPLETE", completion_tokens=5)
    assert value(one, "llamaql_generated_tokens_total") == 5
    assert value(other, "llamaql_generated_tokens_total") == 0


def test_without_an_engine_it_is_down_and_idle() -> None:
    metrics = Metrics(CollectorRegistry(), engine=None)
    metrics.engine_up = True  # nothing to be up
    assert value(metrics, "llamaql_engine_up") == 0
    assert value(metrics, "llamaql_queue_depth") == 0
    assert value(metrics, "llamaql_active_replies") == 0


async def test_engine_load_is_read_when_scraped() -> None:
    engine = FakeEngine()
    metrics = Metrics(CollectorRegistry(), engine=engine)
    await engine.start()
    try:
        assert value(metrics, "llamaql_engine_up") == 0
        metrics.engine_up = True
        assert value(metrics, "llamaql_engine_up") == 1
        prompt = await engine.prepare([ChatMessage("user", "hi")], SamplingOptions())
        engine.script(paced=True)
        engine.script(paced=True)
        first = engine.submit(prompt, Requester(user="u", conversation="c"))
        engine.submit(prompt, Requester(user="u", conversation="c"))
        await asyncio.wait_for(first.started.wait(), 5)
        assert value(metrics, "llamaql_active_replies") == 1
        assert value(metrics, "llamaql_queue_depth") == 1
    finally:
        await engine.stop()


def test_the_page_is_prometheus_text_unless_openmetrics_is_asked_for() -> None:
    metrics = Metrics(CollectorRegistry(), engine=None)
    body, content_type = metrics.exposition("")
    assert content_type.startswith("text/plain")
    assert b"# TYPE llamaql_chat_requests_total counter" in body
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
