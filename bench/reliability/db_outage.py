"""Database outage: PostgreSQL refuses connections, then relays nothing (a blackhole),
each for `outage_s`, through a TCP proxy in front of it, while a real `llamaql serve`
streams real replies and clients keep asking.

Checks: no request answers INTERNAL; none takes longer than LLAMAQL_DB_TIMEOUT_SECONDS
(plus a little slack for a busy machine; a cancel, which also waits for the model to stop
and for a checkpoint in flight, twice that); `/health` is 503 during the outage and 200
after it, `/health/live` 200 throughout; every reply that was streaming when the outage
began is saved once the database is back, with the text its client was shown; and no
conversation is left busy (a follow-up message in each completes).

It needs a PostgreSQL server: LLAMAQL_DATABASE_URL when it is a PostgreSQL URL, else
LLAMAQL_TEST_POSTGRES_URL; on it a private database is made and dropped afterwards.
Without one the figure is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench.reliability.common import Figure, FigureSkipped, Server, Size
from bench.reliability.outage_probes import (
    Answer,
    InFlight,
    cancel_all,
    follow_up,
    private_database,
    probe_round,
    start_replies,
    stored_replies,
)
from bench.reliability.tcp_proxy import TcpProxy
from bench.reliability.wire import Mux, create_conversations
from llamaql.config import Config

log = logging.getLogger("bench.reliability")

POSTGRES_ENV = "LLAMAQL_TEST_POSTGRES_URL"
SLACK_S = 2.0  # a busy machine's share on top of the database timeout
MODES = ("refuse", "blackhole")


@dataclass(frozen=True)
class OutageParams:
    outage_s: float  # each mode's outage
    replies: int  # streaming when each outage begins
    db_timeout_s: float  # LLAMAQL_DB_TIMEOUT_SECONDS of the server
    max_tokens: int = 800  # long enough to be streaming when the outage begins
    probers: int = 3  # clients asking in a loop during the outage


PARAMS: dict[Size, OutageParams] = {
    "small": OutageParams(outage_s=4.0, replies=2, db_timeout_s=1.5),
    "medium": OutageParams(outage_s=6.0, replies=3, db_timeout_s=3.0),
    "full": OutageParams(outage_s=10.0, replies=4, db_timeout_s=5.0),
}


def postgres_url(settings: Config) -> str:
    """The PostgreSQL server to use, or FigureSkipped naming what to set."""
    if settings.database.database_url.startswith("postgresql+asyncpg://"):
        return settings.database.database_url
    url = os.environ.get(POSTGRES_ENV, "")
    if not url.startswith("postgresql+asyncpg://"):
        raise FigureSkipped(
            f"needs PostgreSQL: set {POSTGRES_ENV} (or LLAMAQL_DATABASE_URL) to a "
            "postgresql+asyncpg:// URL"
        )
    return url


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    figure = Figure("db_outage", dict(p.__dict__))
    async with private_database(postgres_url(settings)) as database:
        target = make_url(database)
        async with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            proxied = target.set(host="127.0.0.1", port=proxy.port)
            env = {
                "LLAMAQL_DATABASE_URL": proxied.render_as_string(hide_password=False),
                "LLAMAQL_DB_TIMEOUT_SECONDS": str(p.db_timeout_s),
                "LLAMAQL_HEARTBEAT_SECONDS": "1",
                "LLAMAQL_REPLICA_DEAD_AFTER_SECONDS": "5",
                "LLAMAQL_CHECKPOINT_SECONDS": "0.5",
                "LLAMAQL_AUTO_TITLE": "false",
                # One user streams every reply here: the per-user share is hog's figure.
                "LLAMAQL_MAX_LIVE_REPLIES_PER_USER": str(p.replies),
            }
            async with Server(settings, env) as server:
                phases = {mode: await _phase(server, proxy, mode, p) for mode in MODES}
    _judge(figure, phases, p, enforce_timing=size != "small")
    return figure


async def _phase(server: Server, proxy: TcpProxy, mode: str, p: OutageParams) -> dict[str, Any]:
    """One outage of `mode`: replies streaming into it, clients asking through it, then
    what is stored and whether each conversation takes another message."""
    user = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=120) as client:
        conversations = await create_conversations(client, server.http_url, user, p.replies + 1)
    idle, busy = conversations[0], conversations[1:]
    async with Mux(server.ws_url, user) as mux:
        flights = await start_replies(mux, busy, p.max_tokens)
        log.info("db_outage: %s for %gs, %d replies streaming", mode, p.outage_s, len(flights))
        if mode == "refuse":
            await proxy.refuse()
        else:
            proxy.blackhole()
        started = time.monotonic()
        flights = [flight for flight in flights if flight.end is None]
        cancelling = asyncio.create_task(_cancel_in_waves(server, user, flights, started, p))
        answers: list[Answer] = []
        while time.monotonic() - started < p.outage_s:
            answers += await probe_round(server, user, idle, p.probers, started)
        answers += await cancelling  # a wave still answering holds the outage open
        await proxy.relay()
        ended = time.monotonic()
        recovered_s = await _health_back(server, ended)
        streams = [await flight.finished(120.0) for flight in flights]
    stored = await stored_replies(server, user, flights, wait_s=60.0)
    follow_ups = [await follow_up(server, user, cid) for cid in busy]
    return {
        "answers": answers,
        "streams": streams,
        "stored": stored,
        "follow_ups": follow_ups,
        "recovered_s": recovered_s,
        "flights": flights,
    }


async def _cancel_in_waves(
    server: Server, user: str, flights: list[InFlight], started: float, p: OutageParams
) -> list[Answer]:
    """Cancel every reply still streaming, half a third into the outage and the rest two
    thirds in: each one ends while the database is away and must be kept until it can be
    saved, however fast or slow the model is on this machine."""
    half = max(1, len(flights) // 2)
    answers: list[Answer] = []
    for at, wave in ((p.outage_s / 3, flights[:half]), (2 * p.outage_s / 3, flights[half:])):
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        answers += await cancel_all(server, user, wave, started)
    return answers


async def _health_back(server: Server, since: float) -> float | None:
    """Seconds until /health is 200 again after the outage (None: not within 60 s)."""
    url = f"http://127.0.0.1:{server.port}/health"
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() - since < 60:
            try:
                if (await client.get(url)).status_code == 200:
                    return round(time.monotonic() - since, 2)
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    return None


def _judge(
    figure: Figure, phases: dict[str, dict[str, Any]], p: OutageParams, *, enforce_timing: bool
) -> None:
    bound_s = p.db_timeout_s + SLACK_S
    for mode, phase in phases.items():
        answers: list[Answer] = phase["answers"]
        flights: list[InFlight] = phase["flights"]
        outcomes = Counter(f"{a.kind}:{a.outcome}" for a in answers)
        internal = sum(1 for a in answers if a.outcome == "INTERNAL") + sum(
            1 for s in phase["streams"] if s == "INTERNAL"
        )
        uncoded = [a for a in answers if not a.coded]
        # A cancel also waits for the model to stop and for a checkpoint in flight, each
        # bounded by the timeout in turn: it has its own bound.
        slowest = max((a.seconds for a in answers if a.kind != "cancel"), default=0.0)
        slowest_cancel = max((a.seconds for a in answers if a.kind == "cancel"), default=0.0)
        # A check started in the outage's first seconds may still see the database (or
        # an answer reused for FRESH_S); from then on /health must say 503.
        health = Counter(a.outcome for a in answers if a.kind == "health" and a.at >= 2.0)
        live = Counter(a.outcome for a in answers if a.kind == "live")
        saved = sum(
            1
            for flight, row in zip(flights, phase["stored"], strict=True)
            if row is not None and row["status"] != "GENERATING" and flight.shown == row["text"]
        )
        free = sum(1 for outcome in phase["follow_ups"] if outcome == "COMPLETE")
        slowest_by_kind: dict[str, float] = {}
        for a in answers:
            slowest_by_kind[a.kind] = round(max(slowest_by_kind.get(a.kind, 0.0), a.seconds), 2)
        figure.values[mode] = {
            "in_flight": len(flights),
            "answers": dict(sorted(outcomes.items())),
            "slowest_s": slowest_by_kind,
            "health_back_s": phase["recovered_s"],
            "stream_ends": dict(Counter(phase["streams"])),
            "stored": [None if r is None else r["status"] for r in phase["stored"]],
            "follow_ups": phase["follow_ups"],
        }
        n = len(flights)
        figure.check(f"{mode}: replies streaming into the outage", n, n >= 1, ">= 1")
        figure.check(f"{mode}: INTERNAL answers", internal, internal == 0, "== 0")
        figure.check(
            f"{mode}: answers neither served nor coded retryable",
            len(uncoded),
            not uncoded,
            "== 0",
        )
        figure.check(
            f"{mode}: slowest request, s",
            round(slowest, 2),
            slowest <= bound_s,
            f"<= {bound_s:g} (DB timeout + {SLACK_S:g})",
            enforced=enforce_timing,
        )
        figure.check(
            f"{mode}: slowest cancelGeneration, s",
            round(slowest_cancel, 2),
            slowest_cancel <= 2 * p.db_timeout_s + SLACK_S,
            f"<= {2 * p.db_timeout_s + SLACK_S:g} (2 x DB timeout + {SLACK_S:g})",
            enforced=enforce_timing,
        )
        figure.check(
            f"{mode}: /health 503 during the outage",
            dict(health),
            set(health) == {"503"},
            "all 503 from 2 s in",
        )
        figure.check(f"{mode}: /health/live 200", dict(live), set(live) == {"200"}, "all 200")
        figure.check(
            f"{mode}: /health 200 after, s",
            phase["recovered_s"],
            phase["recovered_s"] is not None,
            "within 60",
        )
        figure.check(f"{mode}: replies in flight saved as shown", saved, saved == n, f"== {n}")
        figure.check(f"{mode}: conversations not left busy", free, free == n, f"== {n}")
