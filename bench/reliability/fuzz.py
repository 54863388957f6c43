"""Fuzz: GraphQL documents and variables drawn from the schema with Hypothesis, sent
over HTTP, and malformed WebSocket frames. No response may be a 500, no error may be
INTERNAL (or lack a code), no socket may close with 1011 (server error), and the
server must still answer afterwards."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from bench.reliability.common import Figure, Server, Size
from bench.reliability.wire import create_conversations
from llamaql.api.schema import build_schema
from llamaql.client.gqlws import PROTOCOL as SUBPROTOCOL
from llamaql.config import Config

MAX_DEPTH = 3


@dataclass(frozen=True)
class FuzzParams:
    documents: int
    frames: int


PARAMS: dict[Size, FuzzParams] = {
    "small": FuzzParams(documents=40, frames=20),
    "medium": FuzzParams(documents=200, frames=80),
    "full": FuzzParams(documents=600, frames=200),
}


class Drawer:
    """Draws documents for a schema: mostly well-typed, with hostile values mixed in."""

    def __init__(self, schema: GraphQLSchema, ids: list[str]) -> None:
        self.schema = schema
        self.ids = ids

    def value(self, data: st.DataObject, type_: GraphQLInputType, depth: int = 0) -> Any:
        if isinstance(type_, GraphQLNonNull):
            return self.value(data, type_.of_type, depth)
        # sampled_from, not integers(0, n) == 0: Hypothesis favours 0 among integers.
        if data.draw(st.sampled_from(range(25))) == 24:
            return data.draw(_json(), label="hostile value")  # anything at all
        if isinstance(type_, GraphQLList):
            size = data.draw(st.integers(0, 3))
            return [self.value(data, type_.of_type, depth + 1) for _ in range(size)]
        if isinstance(type_, GraphQLEnumType):
            return data.draw(st.sampled_from([*type_.values, "NOPE"]))
        if isinstance(type_, GraphQLInputObjectType):
            fields = {}
            for name, field in type_.fields.items():
                if depth < MAX_DEPTH and data.draw(st.booleans()):
                    fields[name] = self.value(data, field.type, depth + 1)
            return fields
        assert isinstance(type_, GraphQLScalarType)
        return data.draw(_scalar(type_.name, self.ids))

    def selection(self, data: st.DataObject, type_: Any, depth: int) -> str:
        named = get_named_type(type_)
        if isinstance(named, GraphQLUnionType):
            parts = ["__typename"]
            for member in data.draw(st.lists(st.sampled_from(named.types), max_size=3)):
                parts.append(f"... on {member.name} {{ {self.selection(data, member, depth)} }}")
            return " ".join(parts)
        if not isinstance(named, GraphQLObjectType):
            return ""
        names = sorted(named.fields)
        if depth >= MAX_DEPTH:
            names = [n for n in names if _is_leaf(named.fields[n])] or ["__typename"]
        chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
        return " ".join(self.field(data, name, named.fields.get(name), depth) for name in chosen)

    def field(self, data: st.DataObject, name: str, field: GraphQLField | None, depth: int) -> str:
        if field is None:
            return name
        args = []
        for arg_name, arg in field.args.items():
            if isinstance(arg.type, GraphQLNonNull) or data.draw(st.booleans()):
                literal = json.dumps(self.value(data, arg.type))
                args.append(f"{arg_name}: $v{len(self.variables)}")
                self.variables[f"v{len(self.variables)}"] = (arg.type, json.loads(literal))
        head = f"{name}({', '.join(args)})" if args else name
        sub = self.selection(data, field.type, depth + 1)
        return f"{head} {{ {sub} }}" if sub else head

    def document(self, data: st.DataObject) -> tuple[str, dict[str, Any]]:
        self.variables: dict[str, tuple[Any, Any]] = {}
        roots = [self.schema.query_type, self.schema.mutation_type]
        root = data.draw(st.sampled_from([r for r in roots if r is not None]))
        body = self.selection(data, root, 0)
        keyword = "mutation" if root is self.schema.mutation_type else "query"
        declared = ", ".join(f"${name}: {t}" for name, (t, _) in self.variables.items())
        values = {name: value for name, (_, value) in self.variables.items()}
        head = f"{keyword}({declared})" if declared else keyword
        document = f"{head} {{ {body} }}"
        mangle = data.draw(st.sampled_from(("keep",) * 8 + ("cut", "variables")))
        if mangle == "cut":  # a broken document
            cut = data.draw(st.integers(0, len(document)))
            document = document[:cut] + data.draw(st.text(max_size=20))
        elif mangle == "variables":  # variables of the wrong shape
            values = data.draw(_json())
        return document, values


def _is_leaf(field: GraphQLField) -> bool:
    named = get_named_type(field.type)
    return isinstance(named, GraphQLScalarType | GraphQLEnumType) and not field.args


def _json() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=50)
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )


def _scalar(name: str, ids: list[str]) -> st.SearchStrategy[Any]:
    if name == "ID":
        return (
            st.sampled_from(ids) | st.sampled_from(ids) | st.uuids().map(str) | st.text(max_size=40)
        )
    if name == "Int":  # mostly plausible page sizes and token counts, sometimes not
        return st.integers(0, 120) | st.integers(-(2**33), 2**33)
    if name == "Float":
        return st.floats(-1e6, 1e6, allow_nan=False)
    if name == "Boolean":
        return st.booleans()
    return st.text(max_size=60)  # String and custom scalars (dates as text)


FRAMES: list[Any] = [
    b"\x00\xff\xfe binary",
    "not json",
    "[]",
    "{}",
    '{"type": 5}',
    '{"type": "subscribe"}',
    '{"type": "subscribe", "id": 1, "payload": "query"}',
    '{"type": "subscribe", "id": "a", "payload": {"query": 12}}',
    '{"type": "subscribe", "id": "a", "payload": {"query": "{ model { name } }", "variables": []}}',
    '{"type": "complete", "id": "never-started"}',
    '{"type": "connection_init", "payload": "x"}',
    '{"type": "connection_init", "payload": {"X-User-ID": "not-a-uuid"}}',
    '{"type": "pong", "payload": {"a": [1, 2, 3]}}',
    '{"type": "next", "id": "x", "payload": {}}',
]


LEGACY_FRAMES: list[Any] = [
    "[]",
    '"start"',
    '{"type": "start", "id": "a", "payload": "query"}',
    '{"type": "start", "id": "a", "payload": {"query": 12}}',
    '{"type": "start", "id": 1, "payload": {"query": "{ __typename }"}}',
    '{"type": "start", "id": "a", "payload": {"query": "{ __typename }", "variables": 3}}',
    '{"type": "stop"}',
    '{"type": "connection_terminate", "payload": []}',
]
LEGACY = Subprotocol("graphql-ws")


async def _frame_round(
    server: Server, user: str, frame: Any, init_first: bool, protocol: Subprotocol = SUBPROTOCOL
) -> str:
    """Send one malformed frame (after a proper init, or instead of it); how it ended."""
    try:
        async with connect(server.ws_url, subprotocols=[protocol], close_timeout=2) as ws:
            if init_first:
                await ws.send(
                    json.dumps({"type": "connection_init", "payload": {"X-User-ID": user}})
                )
                await asyncio.wait_for(ws.recv(), 10)
            await ws.send(frame)
            while True:
                raw = await asyncio.wait_for(ws.recv(), 2)
                message = json.loads(raw)
                for error in _errors(message):
                    code = (error.get("extensions") or {}).get("code")
                    if code in (None, "INTERNAL"):
                        return f"error code {code}"
    except TimeoutError:
        return "open"
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
        return "closed 1011" if code == 1011 else ("dropped" if code is None else "closed")
    except InvalidStatus as refused:
        return f"http {refused.response.status_code}"


def _errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    payload = message.get("payload")
    if message.get("type") == "error" and isinstance(payload, list):
        return payload
    if message.get("type") == "error" and isinstance(payload, dict):  # graphql-ws
        return [payload]
    if message.get("type") in ("next", "data") and isinstance(payload, dict):
        return list(payload.get("errors") or [])
    return []


def _post_documents(server: Server, drawer: Drawer, user: str, count: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    with httpx.Client(timeout=30) as client:

        @settings(
            max_examples=count,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def send(data: st.DataObject) -> None:
            document, variables = drawer.document(data)
            response = client.post(
                server.http_url,
                json={"query": document, "variables": variables},
                headers={"X-User-ID": user},
            )
            if response.status_code >= 500:
                outcomes[f"http {response.status_code}"] += 1
                return
            body = response.json()
            codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
            for code in codes or ["ok"]:
                outcomes[str(code)] += 1

        send()
    return outcomes


async def run(settings_: Config, size: Size) -> Figure:
    p = PARAMS[size]
    figure = Figure("fuzz", dict(p.__dict__))
    schema = build_schema(settings_.api)._schema
    user = str(uuid.uuid4())
    async with Server(settings_, {"LLAMAQL_AUTO_TITLE": "false"}) as server:
        async with httpx.AsyncClient(timeout=60) as client:
            ids = await create_conversations(client, server.http_url, user, 3)
        drawer = Drawer(schema, ids)
        outcomes = await asyncio.to_thread(_post_documents, server, drawer, user, p.documents)
        frames: Counter[str] = Counter()
        for i in range(p.frames):
            frame = FRAMES[i % len(FRAMES)]
            frames[await _frame_round(server, user, frame, init_first=i % 2 == 0)] += 1
        for i in range(p.frames // 2):
            frame = LEGACY_FRAMES[i % len(LEGACY_FRAMES)]
            ended = await _frame_round(server, user, frame, i % 4 < 2, LEGACY)
            frames[f"graphql-ws {ended}"] += 1
        async with httpx.AsyncClient(timeout=30) as client:
            alive = (await client.post(server.http_url, json={"query": "{__typename}"})).status_code
        log = server.log_text()
    tracebacks = log.count("Traceback")
    first = log.find("Traceback")
    # The end of the first traceback (its exception line), to say what went wrong.
    excerpt = log[first : log.find("\n20", first) if "\n20" in log[first:] else None][-600:]
    bad_http = {
        k: v for k, v in outcomes.items() if k.startswith("http") or k in ("INTERNAL", "None")
    }
    bad_frames = {
        k: v
        for k, v in frames.items()
        if k.removeprefix("graphql-ws ") in ("closed 1011", "dropped")
        or k.removeprefix("graphql-ws ").startswith(("error", "http 5"))
    }
    figure.values = {
        "documents": dict(outcomes),
        "frames": dict(frames),
        "log_tracebacks": tracebacks,
    }
    if tracebacks:
        figure.values["first_traceback_end"] = excerpt
    figure.check("documents: no 500, no INTERNAL, every error coded", bad_http, not bad_http, "{}")
    figure.check(
        "frames: no 1011, no dropped socket, no INTERNAL", bad_frames, not bad_frames, "{}"
    )
    figure.check("server still answers afterwards", alive, alive == 200, "HTTP 200")
    figure.check("tracebacks in the server log", tracebacks, tracebacks == 0, "0")
    return figure
