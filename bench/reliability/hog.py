"""Hog: one user with many sockets of subscriptions for long replies, each sent again the
moment it ends or is refused, against another user's first-token time.

Before the per-user limit this user held every sequence and every queue place, and the
other user's first token went from 0.05-0.35 s alone to 16-59 s (issue 16, finding 4).
The server now keeps each user to LLAMAQL_MAX_LIVE_REPLIES_PER_USER live replies, so
the other user finds a sequence: its first token under the hog must stay within twice
its time alone plus one hog reply's length. The hog's live replies are sampled in the
database throughout, and must never exceed the limit."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.reliability.common import Figure, Server, Size
from bench.reliability.wire import Mux, create_conversations
from llamaql.config import Config


@dataclass(frozen=True)
class HogParams:
    sockets: int  # the hog's WebSockets
    subscriptions: int  # sendMessage subscriptions on each, always one in flight
    reply_tokens: int  # each hog reply runs to this many tokens
    probes: int  # the other user's sends, alone and then under the hog
    probe_tokens: int = 8


PARAMS: dict[Size, HogParams] = {
    "small": HogParams(sockets=2, subscriptions=3, reply_tokens=32, probes=2),  # 6 > 4 per user
    "medium": HogParams(sockets=3, subscriptions=4, reply_tokens=256, probes=5),  # finding 4
    "full": HogParams(sockets=40, subscriptions=4, reply_tokens=256, probes=10),
}
HOG_TEXT = "Count from 1 to 300, separated by commas."  # greedy: runs to maxTokens
HOG_SEND = """
subscription Hog($conversationId: ID!, $text: String!, $options: GenerationOptionsInput) {
  sendMessage(conversationId: $conversationId, text: $text, options: $options) {
    __typename
    ... on MessageFailed { code reason }
  }
}"""
OWN_LIMIT = "(the most per user)"  # in the reason of a refusal for the user's own limit
ENGINE_QUEUE = "busy with other replies"  # in the reason of a refusal for a full engine queue
SAMPLE_S = 0.05
STEADY_WAIT_S = 600.0
PROBE_RETRY_S = 0.05
PROBE_DEADLINE_S = 600.0
SETTLE_WAIT_S = 120.0


@dataclass
class HogTally:
    """How the hog's sends ended: served, refused with QUEUE_FULL (by reason), or else."""

    served: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    other: Counter[str] = field(default_factory=Counter)

    @property
    def refused_own_limit(self) -> int:
        return sum(n for reason, n in self.refused.items() if OWN_LIMIT in reason)

    @property
    def refused_engine_queue(self) -> int:
        """Refusals because the engine's queue was full: the hog reached past its share."""
        return sum(n for reason, n in self.refused.items() if ENGINE_QUEUE in reason)

    def add(self, messages: list[dict[str, Any]]) -> None:
        last = messages[-1] if messages else {"type": "closed"}
        events = [m["payload"] for m in messages if m.get("type") == "next"]
        if last.get("type") in ("closed", "error"):
            self.other[str(last["type"])] += 1
        elif not events or events[-1].get("errors"):
            self.other["GraphQL error"] += 1
        else:
            event = events[-1]["data"]["sendMessage"]
            if event["__typename"] == "MessageCompleted":
                self.served += 1
            elif event.get("code") == "QUEUE_FULL":
                # Also the user's database share when its requests pile up: own limits both.
                self.refused[str(event.get("reason"))] += 1
            else:
                self.other[f"{event.get('code')}: {event.get('reason')}"] += 1


async def _hog_slot(mux: Mux, cid: str, tokens: int, tally: HogTally) -> None:
    """One subscription of the hog, sent again at once however it ended (until cancelled)."""
    variables = {
        "conversationId": cid,
        "text": HOG_TEXT,
        "options": {"maxTokens": tokens, "temperature": 0.0},
    }
    while True:
        messages = await mux.operation(HOG_SEND, variables)
        tally.add(messages)
        if messages[-1].get("type") == "closed":
            return


def _live_replies(database: Path, user: str) -> int:
    """The user's GENERATING replies, read straight from the server's SQLite file."""
    uri = f"file:{database}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as connection:
        row = connection.execute(
            "SELECT COUNT(*) FROM messages WHERE user_id = ? AND status = 'GENERATING'",
            (uuid.UUID(user).hex,),
        ).fetchone()
    return int(row[0])


async def _sample_live(database: Path, user: str, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], await asyncio.to_thread(_live_replies, database, user))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


async def _probe(mux: Mux, cid: str, index: int, tokens: int) -> tuple[float | None, int]:
    """The other user's send: seconds from the first try to the first token (None when
    never served) and how many tries were refused with QUEUE_FULL."""
    started = time.perf_counter()
    refusals = 0
    while True:
        timing = await mux.send_message(
            cid, f"Say one word about the number {index}.", {"maxTokens": tokens}
        )
        late = time.perf_counter() - started > PROBE_DEADLINE_S
        if timing.failed_code == "QUEUE_FULL" and not late:
            refusals += 1
            await asyncio.sleep(PROBE_RETRY_S)
            continue
        served = timing.failed_code is None and timing.finish_reason is not None
        first = timing.delta_times[0] - started if served and timing.delta_times else None
        return first, refusals


async def _probes(mux: Mux, conversations: list[str], p: HogParams) -> tuple[list[float], int]:
    """Sequential probes, one per conversation; (first-token times, refusals); a probe
    never served is missing from the times."""
    times: list[float] = []
    refusals = 0
    for index, cid in enumerate(conversations):
        first, refused = await _probe(mux, cid, index, p.probe_tokens)
        refusals += refused
        if first is not None:
            times.append(first)
    return times, refusals


async def _until(predicate: Any, wait_s: float) -> bool:
    """Poll `predicate()` (sync or async) until true or `wait_s` passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(SAMPLE_S)
    return False


async def _measure(server: Server, p: HogParams, limit: int) -> dict[str, Any]:
    hog, other = str(uuid.uuid4()), str(uuid.uuid4())
    slots = p.sockets * p.subscriptions
    async with httpx.AsyncClient(timeout=60) as client:
        hog_cids = await create_conversations(client, server.http_url, hog, slots)
        alone_cids = await create_conversations(client, server.http_url, other, p.probes + 1)
        under_cids = await create_conversations(client, server.http_url, other, p.probes)
    async with Mux(server.ws_url, other) as probe:
        alone, alone_refusals = await _probes(probe, alone_cids[1:], p)
        one_reply = await probe.send_message(
            alone_cids[0], HOG_TEXT, {"maxTokens": p.reply_tokens, "temperature": 0.0}
        )
        tally, peak, stop = HogTally(), [0], asyncio.Event()
        sampler = asyncio.create_task(_sample_live(server.database, hog, peak, stop))
        async with contextlib.AsyncExitStack() as stack:
            muxes = [
                await stack.enter_async_context(Mux(server.ws_url, hog)) for _ in range(p.sockets)
            ]
            tasks = [
                asyncio.create_task(_hog_slot(muxes[i % p.sockets], cid, p.reply_tokens, tally))
                for i, cid in enumerate(hog_cids)
            ]
            # Steady state: the hog's first replies ended and were sent again at once.
            steady = await _until(lambda: tally.served >= min(limit, slots), STEADY_WAIT_S)
            under, under_refusals = await _probes(probe, under_cids, p)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # Closed sockets stop the hog's replies; each is saved CANCELLED.

        async def settled_now() -> bool:
            return await asyncio.to_thread(_live_replies, server.database, hog) == 0

        settled = await _until(settled_now, SETTLE_WAIT_S)
        stop.set()
        await sampler
    reply_s = (
        one_reply.finished_at - one_reply.sent_at if one_reply.finished_at is not None else None
    )
    return {
        "alone": alone,
        "under": under,
        "refusals": alone_refusals + under_refusals,
        "reply_s": reply_s,
        "reply_tokens": one_reply.completion_tokens,
        "tally": tally,
        "peak": peak[0],
        "steady": steady,
        "settled": settled,
    }


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    limit = settings.live_replies_per_user
    slots = p.sockets * p.subscriptions
    figure = Figure(
        "hog",
        {
            **p.__dict__,
            "parallel": settings.engine.parallel,
            "queue_size": settings.engine.queue_size,
            "max_live_replies_per_user": limit,
        },
    )
    env = {
        "LLAMAQL_MAX_LIVE_REPLIES_PER_USER": str(limit),
        "LLAMAQL_MAX_SUBSCRIPTIONS_PER_CONNECTION": str(p.subscriptions),
        # Titles are background work of their own; this figure is about one user's share.
        "LLAMAQL_AUTO_TITLE": "false",
    }
    async with Server(settings, env) as server:
        m = await _measure(server, p, limit)
    tally: HogTally = m["tally"]
    alone, under = m["alone"], m["under"]
    alone_p50 = statistics.median(alone) if alone else None
    under_max = max(under) if under else None
    figure.values = {
        "first_token_alone_s": _rounded(alone),
        "first_token_under_hog_s": _rounded(under),
        "first_token_alone_p50_s": round(alone_p50, 3) if alone_p50 is not None else None,
        "first_token_under_hog_max_s": round(under_max, 3) if under_max is not None else None,
        "hog_reply_alone_s": round(m["reply_s"], 3) if m["reply_s"] is not None else None,
        "hog_reply_tokens": m["reply_tokens"],
        "hog_served": tally.served,
        "hog_refused_own_limit": tally.refused_own_limit,
        "hog_refusals": dict(tally.refused),
        "hog_other_outcomes": dict(tally.other),
        "hog_live_replies_peak": m["peak"],
        "other_user_refusals": m["refusals"],
    }
    figure.check("the hog reached its steady state", m["steady"], m["steady"], "true")
    figure.check(
        "the hog's live replies (sampled in the database)",
        m["peak"],
        m["peak"] == min(limit, slots),
        f"== {min(limit, slots)} (the limit: reached, never passed)",
    )
    figure.check(
        "hog sends refused for its own limit",
        tally.refused_own_limit,
        tally.refused_own_limit >= 1,
        f">= 1 ({slots} subscriptions > limit {limit})",
        enforced=slots > limit,
    )
    figure.check(
        "hog sends refused for a full engine queue",
        tally.refused_engine_queue,
        tally.refused_engine_queue == 0,
        "0 (its share is below the sequences)",
    )
    figure.check(
        "hog sends ending otherwise than served or QUEUE_FULL",
        dict(tally.other),
        not tally.other,
        "{}",
    )
    served = len(alone) + len(under)
    figure.check(
        "the other user's probes served", served, served == 2 * p.probes, f"{2 * p.probes}"
    )
    figure.check("the other user's sends refused", m["refusals"], m["refusals"] == 0, "0")
    bound = (
        2 * alone_p50 + m["reply_s"] if alone_p50 is not None and m["reply_s"] is not None else None
    )
    figure.check(
        "other user's first token under the hog, worst (s)",
        figure.values["first_token_under_hog_max_s"],
        under_max is not None and bound is not None and under_max <= bound,
        f"<= 2 x {figure.values['first_token_alone_p50_s']} alone + "
        f"{figure.values['hog_reply_alone_s']} one reply = {bound and round(bound, 3)}",
        enforced=size != "small",
    )
    figure.check(
        "no hog reply left GENERATING after its sockets closed", m["settled"], m["settled"], "true"
    )
    return figure
