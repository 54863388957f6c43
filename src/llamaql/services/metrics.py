"""Prometheus metrics: the figures /metrics serves, in one registry per app.

The engine's load (waiting and active replies) and whether it is up are read when
scraped; a reply is counted when it ends (its saved outcome, whether or not a stream
still watched it: replies outlive their streams), and a request refused before it
wrote anything by the GraphQL edge.
Labels take only a bounded set of values (an outcome code): never a user, a
conversation or any text, so the page holds operational figures only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from llamaql.ports.engine import Engine, EngineLoad
from llamaql.services.chat.events import ChatEvent, Completed, Failed

logger = logging.getLogger(__name__)

# How a sendMessage, regenerate or editMessage request ended: the stored reply's status,
# or the contract's error code.
OUTCOMES = (
    "COMPLETE",
    "CANCELLED",
    "UNAUTHENTICATED",
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "QUEUE_FULL",
    "CONTEXT_OVERFLOW",
    "CONVERSATION_BUSY",
    "ENGINE_ERROR",
    "MODEL_UNAVAILABLE",
    "SERVICE_UNAVAILABLE",
    "INTERNAL",
)
TIME_TO_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
TOKENS_PER_SECOND_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


class _EngineCollector:
    """Reads the engine's load once per scrape (no sampling thread, nothing stale)."""

    def __init__(self, engine: Engine | None, metrics: Metrics) -> None:
        self._engine = engine
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        load = self._engine.load() if self._engine is not None else EngineLoad(0, 0)
        up = self._engine is not None and self._metrics.engine_up and load.reachable
        yield GaugeMetricFamily(
            "llamaql_engine_up",
            "1 while the inference engine is started (and, when remote, its server last "
            "answered), else 0",
            int(up),
        )
        yield GaugeMetricFamily(
            "llamaql_queue_depth",
            "Replies waiting for a free sequence (title requests not counted)",
            load.waiting,
        )
        yield GaugeMetricFamily(
            "llamaql_active_replies", "Replies being decoded now (titles included)", load.active
        )
        loaded = GaugeMetricFamily(
            "llamaql_model_loaded", "1 for each model loaded now", labels=["model"]
        )
        for name in self._engine.loaded_models() if self._engine is not None else ():
            loaded.add_metric([name], 1)
        yield loaded


class Metrics:
    """The app's metrics over its own `registry` (never the process-wide default one, so
    that several apps in one process, as in tests, each count their own)."""

    def __init__(self, registry: CollectorRegistry, *, engine: Engine | None) -> None:
        self.registry = registry
        self.engine_up = False
        registry.register(_EngineCollector(engine, self))
        ProcessCollector(registry=registry)
        self._tokens = Counter(
            "llamaql_generated_tokens",
            "Reply tokens generated for sendMessage, regenerate and editMessage (not titles)",
            registry=registry,
        )
        self._first_token = Histogram(
            "llamaql_time_to_first_token_seconds",
            "From a reply's start on a sequence to its first token (prompt evaluation; "
            "queue wait not included)",
            buckets=TIME_TO_FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self._speed = Histogram(
            "llamaql_tokens_per_second",
            "A reply's generation speed after its first token",
            buckets=TOKENS_PER_SECOND_BUCKETS,
            registry=registry,
        )
        # The same figures by model (the unlabelled series above stay, as they were).
        self._model_tokens = Counter(
            "llamaql_model_generated_tokens",
            "Reply tokens generated, by the model that wrote the reply",
            ["model"],
            registry=registry,
        )
        self._model_first_token = Histogram(
            "llamaql_model_time_to_first_token_seconds",
            "Time to first token (as llamaql_time_to_first_token_seconds), by model",
            ["model"],
            buckets=TIME_TO_FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self._requests = Counter(
            "llamaql_chat_requests",
            "sendMessage, regenerate and editMessage requests by how they ended: COMPLETE, "
            "CANCELLED or an error code",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self._requests.labels(outcome)  # every series exists from the start, at 0

    def reply_ended(
        self,
        outcome: str,
        *,
        model: str | None = None,
        completion_tokens: int | None = None,
        prompt_ms: float | None = None,
        tokens_per_second: float | None = None,
    ) -> None:
        """Count one ended request and, when it produced tokens, its usage."""
        if outcome not in OUTCOMES:
            logger.error("unknown outcome %r counted as INTERNAL", outcome)
            outcome = "INTERNAL"
        self._requests.labels(outcome).inc()
        if not completion_tokens:
            return  # refused, failed or cancelled before its first token: no timings
        self._tokens.inc(completion_tokens)
        if model is not None:
            self._model_tokens.labels(model).inc(completion_tokens)
        if prompt_ms is not None:
            self._first_token.observe(prompt_ms / 1000.0)
            if model is not None:
                self._model_first_token.labels(model).observe(prompt_ms / 1000.0)
        if tokens_per_second:
            self._speed.observe(tokens_per_second)

    def reply_finished(self, event: ChatEvent) -> None:
        """Count a reply's (or a refusal's) terminal event with the stored reply's usage."""
        if isinstance(event, Failed):
            outcome, reply = event.code, event.assistant_message
        elif isinstance(event, Completed):
            outcome, reply = event.message.status, event.message
        else:
            return
        usage = reply.usage if reply else None
        self.reply_ended(
            outcome,
            model=reply.model if reply else None,
            completion_tokens=usage.completion_tokens if usage else None,
            prompt_ms=usage.prompt_ms if usage else None,
            tokens_per_second=usage.tokens_per_second if usage else None,
        )

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The page and its content type, in the format the scraper's Accept asks for
        (Prometheus text by default, OpenMetrics when asked)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
