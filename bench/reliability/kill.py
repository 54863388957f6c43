"""Kill: SIGKILL the server in the middle of a reply, start it again on the same file.
Every committed message is intact, and the interrupted reply is FAILED with finish
reason `interrupted`, keeping the text its last checkpoint saved (a prefix of what the
client had been shown); a replyStream watcher of the server that carries on gets that
as its terminal event: MessageFailed with the stored FAILED/interrupted reply. On one
SQLite file that is the next start; with PostgreSQL (LLAMAQL_TEST_POSTGRES_URL) one more
round runs two replicas on a scratch database, a watcher on B following the reply that
A generates when A is killed (B's sweep marks it once A stops beating)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common import scratch_postgres
from bench.reliability.common import Figure, Server, Size
from bench.reliability.wire import Mux, create_conversations, post
from llamaql.config import Config

log = logging.getLogger("bench.reliability")

MESSAGES = """
query($id: ID!) { conversation(id: $id) {
  messages(first: 100) { edges { node { id role status text finishReason } } }
} }
"""
SEND = """
subscription($id: ID!, $text: String!, $options: GenerationOptionsInput) {
  sendMessage(conversationId: $id, text: $text, options: $options) {
    __typename ... on TokenDelta { text } ... on MessageFailed { code }
    ... on MessageQueued { assistantMessageId }
  }
}
"""
POSTGRES_ENV = "LLAMAQL_TEST_POSTGRES_URL"
REPLICA_ENV = {"LLAMAQL_HEARTBEAT_SECONDS": "0.5", "LLAMAQL_REPLICA_DEAD_AFTER_SECONDS": "2"}
WATCH = """
subscription($id: ID!) {
  replyStream(messageId: $id) {
    __typename ... on TokenDelta { text }
    ... on MessageFailed { code assistantMessage { id status finishReason text } }
    ... on MessageCompleted { message { id status } }
  }
}
"""
# Replies long enough to be killed in the middle. Greedy decoding is deterministic on one
# machine but not across CPUs, so a text whose reply ends before the kill is followed by the
# next one in the same conversation (that exchange is then committed too).
LONG_TEXTS = (
    "Count from 1 to 300, separated by commas.",
    "Write a long story about a lighthouse keeper, at least 500 words.",
    "List the numbers from 1000 down to 1, one per line.",
)


class EndedBeforeKill(RuntimeError):
    """The reply finished before the server could be killed in its middle."""


@dataclass(frozen=True)
class KillParams:
    kills: int  # kill/restart rounds, each in its own conversation
    checkpoint_s: float = 0.5
    stream_before_kill_s: float = 2.0  # at least a few checkpoints


PARAMS: dict[Size, KillParams] = {
    "small": KillParams(kills=1),
    "medium": KillParams(kills=2),
    "full": KillParams(kills=3),
}


async def _stream_then_kill(
    server: Server,
    user: str,
    conversation: str,
    text: str,
    wait_s: float,
    watcher: Server | None = None,
) -> tuple[str, asyncio.Task[dict[str, Any] | None] | None]:
    """Send `text`, read the reply for `wait_s` after its first text, SIGKILL the server;
    the text the client was shown, and (with `watcher`, another replica) the task of a
    replyStream following the reply there from its first text on. EndedBeforeKill when
    the reply finished first."""
    shown = ""
    watching: asyncio.Task[dict[str, Any] | None] | None = None
    reply_id = ""
    async with Mux(server.ws_url, user) as mux:
        options = {"temperature": 0.0, "maxTokens": 400}
        _, queue = await mux.subscribe(SEND, {"id": conversation, "text": text, "options": options})
        first_at: float | None = None
        async with asyncio.timeout(180):
            while first_at is None or time.monotonic() - first_at < wait_s:
                message = await queue.get()
                if message is None or message["type"] != "next":
                    raise RuntimeError(f"the stream ended before the kill: {message}")
                event = message["payload"]["data"]["sendMessage"]
                if event["__typename"] == "MessageQueued":
                    reply_id = event["assistantMessageId"]
                elif event["__typename"] == "TokenDelta":
                    shown += event["text"]
                    first_at = first_at or time.monotonic()
                    if watcher is not None and watching is None:
                        watching = asyncio.create_task(_watch_end(watcher, user, reply_id))
                elif event["__typename"] == "MessageCompleted":
                    if watching is not None:
                        watching.cancel()
                    raise EndedBeforeKill(f"{len(shown)} characters")
                elif event["__typename"] == "MessageFailed":
                    raise RuntimeError(f"the reply failed before the kill: {event}")
        server.kill()
    return shown, watching


async def _one_round(settings: Config, env: dict[str, str], p: KillParams) -> dict[str, Any]:
    user = str(uuid.uuid4())
    first = Server(settings, env)
    await first.__aenter__()
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            (conversation,) = await create_conversations(client, first.http_url, user, 1)
        async with Mux(first.ws_url, user) as mux:
            done = await mux.send_message(conversation, "Name a colour.", {"maxTokens": 12})
        for text in LONG_TEXTS:
            async with httpx.AsyncClient(timeout=60) as client:
                before = await post(client, first.http_url, user, MESSAGES, {"id": conversation})
            try:
                shown, _ = await _stream_then_kill(
                    first, user, conversation, text, p.stream_before_kill_s
                )
                break
            except EndedBeforeKill as ended:
                log.info("kill: the reply to %r ended first (%s); next text", text, ended)
        else:
            raise RuntimeError(f"all {len(LONG_TEXTS)} replies ended before the kill")
    except BaseException:
        first.stop(keep_files=True)
        raise
    second = Server(settings, env, database=first.database)
    async with second, httpx.AsyncClient(timeout=60) as client:
        after = await post(client, second.http_url, user, MESSAGES, {"id": conversation})
        now = [e["node"] for e in after["conversation"]["messages"]["edges"]]
        watched = await _watch_end(second, user, now[-1]["id"])
    committed = [e["node"] for e in before["conversation"]["messages"]["edges"]]
    return {
        "folder": first.folder,
        "first_reply_done": done.failed_code is None and done.finish_reason is not None,
        "committed": committed,
        "after": now,
        "shown": shown,
        "text": text,
        "watched": watched,
    }


async def _replica_round(settings: Config, env: dict[str, str], p: KillParams, url: str) -> bool:
    """Two replicas on a scratch PostgreSQL database: A generates a reply that a
    replyStream on B follows; A is killed. Whether B's watcher ends with the recovery's
    FAILED/interrupted reply."""
    user = str(uuid.uuid4())
    async with scratch_postgres(url) as database:
        common = {**env, **REPLICA_ENV, "LLAMAQL_DATABASE_URL": database}
        a = Server(settings, {**common, "LLAMAQL_REPLICA_ID": "kill-a"})
        await a.__aenter__()
        try:
            async with Server(settings, {**common, "LLAMAQL_REPLICA_ID": "kill-b"}) as b:
                async with httpx.AsyncClient(timeout=60) as client:
                    (conversation,) = await create_conversations(client, a.http_url, user, 1)
                for text in LONG_TEXTS:
                    try:
                        _, watching = await _stream_then_kill(
                            a, user, conversation, text, p.stream_before_kill_s, watcher=b
                        )
                        break
                    except EndedBeforeKill as ended:
                        log.info("kill: the reply to %r ended first (%s); next text", text, ended)
                else:
                    raise RuntimeError(f"all {len(LONG_TEXTS)} replies ended before the kill")
                end = await watching if watching is not None else None
        finally:
            a.stop()
    stored = (end or {}).get("assistantMessage") or {}
    return (end or {}).get("__typename") == "MessageFailed" and (
        stored.get("status"),
        stored.get("finishReason"),
    ) == ("FAILED", "interrupted")


async def _watch_end(server: Server, user: str, reply_id: str) -> dict[str, Any] | None:
    """The terminal event a replyStream of the reply gets on `server` (None: none came)."""
    async with Mux(server.ws_url, user) as mux, asyncio.timeout(60):
        _, queue = await mux.subscribe(WATCH, {"id": reply_id})
        while (message := await queue.get()) is not None and message["type"] == "next":
            event: dict[str, Any] = message["payload"]["data"]["replyStream"]
            if event["__typename"] != "TokenDelta":
                return event
    return None


async def run(settings: Config, size: Size) -> Figure:
    p = PARAMS[size]
    figure = Figure("kill", dict(p.__dict__))
    env = {"LLAMAQL_CHECKPOINT_SECONDS": str(p.checkpoint_s), "LLAMAQL_AUTO_TITLE": "false"}
    intact = marked = kept = prefix = watched = 0
    kept_ratios: list[float] = []
    folders = []
    for _ in range(p.kills):
        round_ = await _one_round(settings, env, p)
        folders.append(round_["folder"])
        committed, after, shown = round_["committed"], round_["after"], round_["shown"]
        # The committed exchange first, unchanged; then the interrupted exchange.
        intact += int(round_["first_reply_done"] and after[: len(committed)] == committed)
        rest = after[len(committed) :]
        user_kept = (
            len(rest) == 2 and rest[0]["role"] == "USER" and rest[0]["text"] == round_["text"]
        )
        reply = rest[1] if len(rest) == 2 else None
        if user_kept and reply is not None:
            marked += int(
                reply["role"] == "ASSISTANT"
                and (reply["status"], reply["finishReason"]) == ("FAILED", "interrupted")
            )
            kept += int(bool(reply["text"]))
            prefix += int(shown.startswith(reply["text"]))
            kept_ratios.append(round(len(reply["text"]) / max(1, len(shown)), 3))
            end = round_["watched"] or {}
            stored = end.get("assistantMessage") or {}
            watched += int(
                (end.get("__typename"), end.get("code")) == ("MessageFailed", "ENGINE_ERROR")
                and (stored.get("id"), stored.get("status"), stored.get("finishReason"))
                == (reply["id"], "FAILED", "interrupted")
            )
    postgres = os.environ.get(POSTGRES_ENV)
    survivor = await _replica_round(settings, env, p, postgres) if postgres else None
    figure.values = {
        "kept_of_shown": kept_ratios,
        "kills": p.kills,
        "replicas": "two on PostgreSQL"
        if postgres
        else f"skipped: no PostgreSQL (set {POSTGRES_ENV})",
    }
    figure.check(
        "committed messages intact after the kill", intact, intact == p.kills, f"== {p.kills}"
    )
    figure.check("interrupted reply FAILED/interrupted", marked, marked == p.kills, f"== {p.kills}")
    figure.check("interrupted reply kept checkpointed text", kept, kept == p.kills, f"== {p.kills}")
    figure.check(
        "kept text is a prefix of what was shown", prefix, prefix == p.kills, f"== {p.kills}"
    )
    figure.check(
        "a replyStream watcher gets the FAILED/interrupted end",
        watched,
        watched == p.kills,
        f"== {p.kills}",
    )
    if survivor is not None:
        figure.check(
            "a replyStream watcher on the surviving replica gets the FAILED/interrupted end",
            int(survivor),
            survivor,
            "== 1",
        )
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return figure
