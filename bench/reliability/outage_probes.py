"""What the database-outage figure does to a server: a private PostgreSQL database,
replies streaming into the outage, rounds of timed requests through it, and the stored
replies and follow-up messages after it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.reliability.common import Server
from bench.reliability.wire import CREATE, Mux

# Served, or refused with a code that says "try again": what an outage may answer.
SERVED_OR_RETRYABLE = frozenset({"ok", "SERVICE_UNAVAILABLE", "QUEUE_FULL", "200", "503"})
SEND = """
subscription($id: ID!, $text: String!, $options: GenerationOptionsInput) {
  sendMessage(conversationId: $id, text: $text, options: $options) {
    __typename
    ... on MessageQueued { assistantMessageId }
    ... on TokenDelta { text }
    ... on MessageCompleted { message { status } }
    ... on MessageFailed { code retryable }
  }
}
"""
QUERY = "{ conversations(first: 5) { totalCount edges { node { id title } } } }"
SEARCH = '{ search(query: "count", first: 5) { totalCount } }'
CANCEL = "mutation($id: ID!) { cancelGeneration(messageId: $id) }"
MESSAGES = """
query($id: ID!) { conversation(id: $id) {
  messages(first: 100) { edges { node { id status text } } }
} }
"""
LONG_TEXT = "Count from 1 to 300, separated by commas."
PROBE_OPTIONS = {"temperature": 0.0, "maxTokens": 4}


@asynccontextmanager
async def private_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the PostgreSQL server of `server_url` (its URL), dropped
    afterwards with FORCE (the server under test may still hold connections)."""
    name = f"llamaql_outage_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@dataclass
class Answer:
    """One request during the outage: what it was, how it ended and how long it took."""

    kind: str  # query, mutation, search, send, cancel, health, live
    outcome: str  # "ok", the contract's error code, or /health's HTTP status
    seconds: float
    at: float  # when it was sent, seconds into the outage

    @property
    def coded(self) -> bool:
        return self.outcome in SERVED_OR_RETRYABLE


@dataclass
class InFlight:
    """A reply streaming when the outage began: what its client was shown, its end."""

    conversation_id: str
    reply_id: str
    queue: asyncio.Queue[dict[str, Any] | None]
    shown: str = ""
    end: str | None = None  # COMPLETE / CANCELLED, a MessageFailed code, or CLOSED
    reader: asyncio.Task[None] | None = field(default=None, repr=False)
    started: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def read(self) -> None:
        try:
            await self._read()
        finally:
            self.started.set()

    async def _read(self) -> None:
        while self.end is None:
            message = await self.queue.get()
            if message is None or message["type"] != "next":
                self.end = "CLOSED"
                return
            payload = message["payload"]
            if payload.get("errors"):
                self.end = str(payload["errors"][0].get("extensions", {}).get("code"))
                return
            event = payload["data"]["sendMessage"]
            if event["__typename"] == "TokenDelta":
                self.shown += event["text"]
                self.started.set()
            elif event["__typename"] == "MessageCompleted":
                self.end = event["message"]["status"]
            elif event["__typename"] == "MessageFailed":
                self.end = event["code"]

    async def finished(self, timeout_s: float) -> str:
        assert self.reader is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), timeout_s)
        except TimeoutError:
            return "NO_END"
        return self.end or "CLOSED"


async def start_replies(mux: Mux, conversations: list[str], max_tokens: int) -> list[InFlight]:
    """One long reply in each conversation, each past its first text (a fast model may
    have ended some already: the caller looks at `end`)."""
    flights = []
    options = {"temperature": 0.0, "maxTokens": max_tokens}
    for cid in conversations:
        _, queue = await mux.subscribe(SEND, {"id": cid, "text": LONG_TEXT, "options": options})
        async with asyncio.timeout(120):
            first = await queue.get()
        assert first is not None, "the socket closed"
        event = first["payload"]["data"]["sendMessage"]
        if event["__typename"] != "MessageQueued":
            raise RuntimeError(f"the reply did not start: {event}")
        flight = InFlight(cid, event["assistantMessageId"], queue)
        flight.reader = asyncio.create_task(flight.read())
        flights.append(flight)
    async with asyncio.timeout(120):
        for flight in flights:
            await flight.started.wait()
    return flights


async def cancel_all(
    server: Server, user: str, flights: list[InFlight], started: float
) -> list[Answer]:
    """cancelGeneration for each reply, at once."""
    async with httpx.AsyncClient(timeout=300) as client:
        jobs = [_cancel(client, server, user, flight.reply_id, started) for flight in flights]
        return list(await asyncio.gather(*jobs))


async def probe_round(
    server: Server, user: str, idle: str, probers: int, started: float
) -> list[Answer]:
    """Queries, mutations, searches, a send and both health checks at once.
    Each prober is a user of its own: one user's requests queue behind each other for
    that user's database share (LLAMAQL_DB_UNITS_PER_USER), by design."""
    async with httpx.AsyncClient(timeout=300) as client:
        jobs = [
            *(
                _graphql(client, server, prober, kind, started)
                for prober in (str(uuid.uuid4()) for _ in range(probers))
                for kind in ("query", "mutation", "search")
            ),
            _health(client, server, "health", "/health", started),
            _health(client, server, "live", "/health/live", started),
            _send(server, user, idle, started),
        ]
        return list(await asyncio.gather(*jobs))


async def _graphql(
    client: httpx.AsyncClient, server: Server, user: str, kind: str, started: float
) -> Answer:
    document, variables = {
        "query": (QUERY, {}),
        "mutation": (CREATE, {"input": {"title": "during the outage"}}),
        "search": (SEARCH, {}),
    }[kind]
    return await _post(client, server, user, kind, document, variables, started)


async def _cancel(
    client: httpx.AsyncClient, server: Server, user: str, reply_id: str, started: float
) -> Answer:
    return await _post(client, server, user, "cancel", CANCEL, {"id": reply_id}, started)


async def _post(
    client: httpx.AsyncClient,
    server: Server,
    user: str,
    kind: str,
    document: str,
    variables: dict[str, Any],
    started: float,
) -> Answer:
    sent = time.monotonic()
    try:
        response = await client.post(
            server.http_url,
            json={"query": document, "variables": variables},
            headers={"X-User-ID": user},
        )
        body = response.json()
        errors = body.get("errors") or []
        outcome = str(errors[0].get("extensions", {}).get("code")) if errors else "ok"
    except (httpx.HTTPError, ValueError) as exc:
        outcome = f"transport:{type(exc).__name__}"
    return Answer(kind, outcome, time.monotonic() - sent, sent - started)


async def _health(
    client: httpx.AsyncClient, server: Server, kind: str, path: str, started: float
) -> Answer:
    sent = time.monotonic()
    try:
        response = await client.get(f"http://127.0.0.1:{server.port}{path}")
        outcome = str(response.status_code)
    except httpx.HTTPError as exc:
        outcome = f"transport:{type(exc).__name__}"
    return Answer(kind, outcome, time.monotonic() - sent, sent - started)


async def _send(server: Server, user: str, cid: str, started: float) -> Answer:
    """A short send to an idle conversation, timed to its first event (refused, or
    queued); a queued one is read to its end so the conversation is idle again."""
    sent = time.monotonic()
    async with Mux(server.ws_url, user) as mux:
        _, queue = await mux.subscribe(SEND, {"id": cid, "text": "Hi", "options": PROBE_OPTIONS})
        seconds: float | None = None
        outcome = "CLOSED"
        async with asyncio.timeout(300):
            while (message := await queue.get()) is not None and message["type"] == "next":
                seconds = seconds if seconds is not None else time.monotonic() - sent
                event = message["payload"]["data"]["sendMessage"]
                if event["__typename"] == "MessageFailed":
                    outcome = event["code"]
                    break
                if event["__typename"] == "MessageCompleted":
                    outcome = "ok"
                    break
    return Answer(
        "send", outcome, seconds if seconds is not None else time.monotonic() - sent, sent - started
    )


async def stored_replies(
    server: Server, user: str, flights: list[InFlight], *, wait_s: float
) -> list[dict[str, Any] | None]:
    """Each reply's stored row once it is no longer GENERATING (its last state seen when
    `wait_s` runs out; None when it cannot be found)."""
    deadline = time.monotonic() + wait_s
    rows: list[dict[str, Any] | None] = [None] * len(flights)
    async with httpx.AsyncClient(timeout=60) as client:
        while True:
            for index, flight in enumerate(flights):
                rows[index] = await _stored(client, server, user, flight)
            settled = all(r is not None and r["status"] != "GENERATING" for r in rows)
            if settled or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.5)


async def _stored(
    client: httpx.AsyncClient, server: Server, user: str, flight: InFlight
) -> dict[str, Any] | None:
    response = await client.post(
        server.http_url,
        json={"query": MESSAGES, "variables": {"id": flight.conversation_id}},
        headers={"X-User-ID": user},
    )
    conversation = (response.json().get("data") or {}).get("conversation") or {}
    edges = (conversation.get("messages") or {}).get("edges") or []
    for edge in edges:
        if edge["node"]["id"] == flight.reply_id:
            return dict(edge["node"])
    return None


async def follow_up(server: Server, user: str, cid: str) -> str:
    """Another message in a conversation after the outage: COMPLETE, or its code."""
    async with Mux(server.ws_url, user, timeout_s=300) as mux:
        timing = await mux.send_message(cid, "Thanks.", PROBE_OPTIONS)
    return timing.failed_code or "COMPLETE"
