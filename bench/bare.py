"""The bare endpoint the API benchmark holds llamaql's reads against: Starlette and
SQLAlchemy with no GraphQL, running the statements llamaql runs for each read on the
same SQLite file and answering with the same JSON.

`python -m bench.bare --database FILE --port N` serves POST /graphql under uvicorn with
`llamaql serve`'s options. It reads the JSON body and the `X-User-ID` header, picks the
read by the body's `operationName` (Page, Messages, Search: the documents in
bench/loadgen.py) and its variables, and runs, on one connection of an async engine:

- Page: the page of conversations (newest activity first, one more than asked) and
  their count;
- Messages: the conversation, the page of its current branch's messages (the same
  ranked statement over the same branch climb) and their count;
- Search: the FTS5 hits with their snippets, their count, and the hits' conversations
  and messages.

It shares llamaql's table definitions, its branch filter and its cursor and snippet
helpers (a few microseconds of string work), never its services, sessions or schema.
Its statements are built once, with bound parameters, as llamaql's repositories do.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

import uvicorn
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llamaql.persistence.models import Conversation, Message, MessageKind
from llamaql.persistence.repositories.branches import on_current_branch
from llamaql.persistence.repositories.search import SQLITE_COUNT, SQLITE_FIND, sqlite_match
from llamaql.persistence.repositories.snippets import CLOSE, ELLIPSIS, OPEN, parse_marked
from llamaql.services.ids import (
    encode_conversation_cursor,
    encode_message_cursor,
    encode_search_cursor,
)
from llamaql.services.search import search_terms

CONVERSATIONS: Any = Conversation.__table__  # type: ignore[attr-defined]
MESSAGES: Any = Message.__table__  # type: ignore[attr-defined]
C, M = CONVERSATIONS.c, MESSAGES.c
ROLES = {MessageKind.SYSTEM: "SYSTEM", MessageKind.BOT: "ASSISTANT", MessageKind.USER: "USER"}


def _page_info(edges: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    return {"hasNextPage": more, "endCursor": edges[-1]["cursor"] if edges else None}


def _branch(user: Any, ids: Any) -> Any:
    return on_current_branch(user, ids)


# Built once with bound parameters, as llamaql's repositories build theirs.
PAGE = (
    select(CONVERSATIONS)
    .where(C.user_id == bindparam("user"))
    .order_by(C.updated_at.desc(), C.id.desc())
    .limit(bindparam("limit"))
)
COUNT = select(func.count()).select_from(CONVERSATIONS).where(C.user_id == bindparam("user"))
CONVERSATION = select(CONVERSATIONS).where(C.id == bindparam("id"), C.user_id == bindparam("user"))
# llamaql's list_pages statement for one conversation, and its counts statement.
_RANK = func.row_number().over(partition_by=M.conversation_id, order_by=M.seq).label("rank")
_MINE = (M.user_id == bindparam("user"), M.conversation_id == bindparam("id"))
_RANKED = (
    select(MESSAGES, _RANK)
    .where(*_MINE, _branch(bindparam("user"), bindparam("ids", expanding=True)))
    .subquery()
)
MESSAGE_PAGE = (
    select(*(_RANKED.c[column.name] for column in MESSAGES.columns))
    .where(_RANKED.c.rank <= bindparam("limit"))
    .order_by(_RANKED.c.conversation_id, _RANKED.c.seq)
)
MESSAGE_COUNT = (
    select(M.conversation_id, func.count())
    .where(
        M.user_id == bindparam("user"),
        M.conversation_id.in_(bindparam("ids", expanding=True)),
        _branch(bindparam("user"), bindparam("ids", expanding=True)),
    )
    .group_by(M.conversation_id)
)
CONVERSATIONS_BY_ID = select(CONVERSATIONS).where(
    C.id.in_(bindparam("ids", expanding=True)), C.user_id == bindparam("user")
)
MESSAGES_BY_ID = select(MESSAGES).where(
    M.id.in_(bindparam("ids", expanding=True)), M.user_id == bindparam("user")
)


async def conversations_page(db: AsyncConnection, user: uuid.UUID, first: int) -> Any:
    rows = (await db.execute(PAGE, {"user": user, "limit": first + 1})).all()
    total = (await db.execute(COUNT, {"user": user})).scalar_one()
    edges = [
        {
            "cursor": encode_conversation_cursor(row.updated_at, row.id),
            "node": {
                "id": str(row.id),
                "title": row.title,
                "updatedAt": row.updated_at.isoformat(),
            },
        }
        for row in rows[:first]
    ]
    page = {"totalCount": total, "edges": edges, "pageInfo": _page_info(edges, len(rows) > first)}
    return {"conversations": page}


async def messages_page(
    db: AsyncConnection, user: uuid.UUID, conversation_id: uuid.UUID, first: int
) -> Any:
    found = (await db.execute(CONVERSATION, {"id": conversation_id, "user": user})).first()
    if found is None:
        return {"conversation": None}
    params = {"user": user, "id": conversation_id, "ids": [conversation_id]}
    rows = (await db.execute(MESSAGE_PAGE, {**params, "limit": first + 1})).all()
    total = (await db.execute(MESSAGE_COUNT, params)).first()
    edges = [
        {
            "cursor": encode_message_cursor(row.seq),
            "node": {
                "id": str(row.id),
                "role": ROLES[MessageKind(row.kind)],
                "text": row.text,
                "createdAt": row.created_at.isoformat(),
            },
        }
        for row in rows[:first]
    ]
    messages = {
        "totalCount": total[1] if total else 0,
        "edges": edges,
        "pageInfo": _page_info(edges, len(rows) > first),
    }
    return {"conversation": {"id": str(found.id), "title": found.title, "messages": messages}}


async def search_page(db: AsyncConnection, user: uuid.UUID, query: str, first: int) -> Any:
    terms = search_terms(query)
    match = sqlite_match(user, terms)
    marks = {"open": OPEN, "close": CLOSE, "ellipsis": ELLIPSIS}
    hits = (
        await db.execute(
            SQLITE_FIND,
            {"user_id": user.hex, "match": match, **marks, "limit": first + 1, "offset": 0},
        )
    ).all()
    total = (await db.execute(SQLITE_COUNT, {"user_id": user.hex, "match": match})).scalar_one()
    found = [(uuid.UUID(str(c)), None if m is None else uuid.UUID(str(m)), s) for c, m, s in hits]
    conversations = await _by_id(db, CONVERSATIONS_BY_ID, user, {c for c, _, _ in found})
    messages = await _by_id(db, MESSAGES_BY_ID, user, {m for _, m, _ in found if m})
    edges = []
    for position, (cid, mid, snippet) in enumerate(found[:first]):
        conversation, message = conversations[cid], messages.get(mid) if mid else None
        node = {
            "conversation": {"id": str(cid), "title": conversation.title},
            "message": None if message is None else {"id": str(mid), "text": message.text},
            "snippet": "".join(part.text for part in parse_marked(snippet)),
        }
        edges.append({"cursor": encode_search_cursor(position), "node": node})
    page = {"totalCount": total, "edges": edges, "pageInfo": _page_info(edges, len(found) > first)}
    return {"search": page}


async def _by_id(
    db: AsyncConnection, statement: Any, user: uuid.UUID, ids: set[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    rows = await db.execute(statement, {"ids": list(ids), "user": user})
    return {row.id: row for row in rows}


def create_bare_app(engine: AsyncEngine) -> Starlette:
    async def graphql(request: Request) -> Response:
        user = uuid.UUID(request.headers["x-user-id"])
        body = await request.json()
        variables = body.get("variables") or {}
        first = int(variables.get("first", 20))
        async with engine.connect() as db:
            operation = body.get("operationName")
            if operation == "Page":
                data = await conversations_page(db, user, first)
            elif operation == "Messages":
                data = await messages_page(db, user, uuid.UUID(variables["id"]), first)
            elif operation == "Search":
                data = await search_page(db, user, variables["query"], first)
            else:
                return Response(json.dumps({"errors": [{"message": "unknown read"}]}), 400)
        return Response(json.dumps({"data": data}), media_type="application/json")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--database", required=True, help="the SQLite file llamaql serves")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    engine = create_async_engine(f"sqlite+aiosqlite:///{args.database}")
    # uvicorn's options as `llamaql serve` passes them (cli.uvicorn_options).
    uvicorn.run(create_bare_app(engine), host="127.0.0.1", port=args.port, log_config=None)


if __name__ == "__main__":
    main()
