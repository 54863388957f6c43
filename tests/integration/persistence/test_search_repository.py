"""Full-text search on SQLite (FTS5) and PostgreSQL (tsvector): the index follows every
write, each user finds only their own rows, and nothing typed reaches the query syntax."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.persistence.old_schema import insert_conversation, insert_message

from llamaql.persistence.db import create_db_engine, create_session_factory
from llamaql.persistence.migrations import alembic_config, migrate
from llamaql.persistence.migrations.unmodelled import SEARCH_TABLES
from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.persistence.repositories import make_uow_factory
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.ports.search import SearchHit
from llamaql.ports.values import Conversation, SamplingOptions
from llamaql.services.search import SearchService, search_terms

pytestmark = pytest.mark.contract


async def _conversation(
    uow: UnitOfWorkFactory, user: uuid.UUID, title: str | None = None
) -> Conversation:
    async with uow() as unit:
        created = await unit.conversations.create(
            user_id=user, title=title, system_prompt=None, options=SamplingOptions()
        )
        await unit.commit()
    return created


async def _message(
    uow: UnitOfWorkFactory,
    user: uuid.UUID,
    conversation: Conversation,
    text: str,
    kind: MessageKind = MessageKind.USER,
) -> uuid.UUID:
    async with uow() as unit:
        message = await unit.messages.add(
            user_id=user,
            conversation_id=conversation.id,
            kind=kind,
            text=text,
            status=MessageStatus.COMPLETE,
        )
        await unit.commit()
    return message.id


async def _find(
    uow: UnitOfWorkFactory, user: uuid.UUID, query: str, *, limit: int = 20, offset: int = 0
) -> list[SearchHit]:
    async with uow() as unit:
        return list(
            await unit.search.find(
                user_id=user, terms=search_terms(query), limit=limit, offset=offset
            )
        )


async def _count(uow: UnitOfWorkFactory, user: uuid.UUID, query: str) -> int:
    async with uow() as unit:
        return await unit.search.count(user_id=user, terms=search_terms(query))


def _snippet(hit: SearchHit) -> str:
    return "".join(f"[{p.text}]" if p.highlighted else p.text for p in hit.snippet)


async def test_each_user_finds_only_their_own_messages_and_titles(
    uow: UnitOfWorkFactory, alice: uuid.UUID, bob: uuid.UUID
) -> None:
    mine = await _conversation(uow, alice, "Walrus facts")
    theirs = await _conversation(uow, bob, "Walrus trivia")
    my_message = await _message(uow, alice, mine, "A walrus can weigh two tonnes.")
    await _message(uow, bob, theirs, "Walrus tusks grow all their lives.")

    hits = await _find(uow, alice, "walrus")

    assert {(h.conversation.id, h.message.id if h.message else None) for h in hits} == {
        (mine.id, None),
        (mine.id, my_message),
    }
    assert all(h.conversation.user_id == alice for h in hits)
    assert await _count(uow, alice, "walrus") == 2
    assert await _count(uow, bob, "walrus") == 2
    assert await _find(uow, alice, "tusks") == []
    assert await _find(uow, uuid.uuid4(), "walrus") == []


async def test_assistant_replies_are_found_and_system_messages_are_not(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    reply = await _message(uow, alice, conversation, "Lisbon is sunny.", MessageKind.BOT)
    await _message(uow, alice, conversation, "Lisbon, be terse.", MessageKind.SYSTEM)

    hits = await _find(uow, alice, "lisbon")

    assert [h.message.id for h in hits if h.message] == [reply]
    assert hits[0].message is not None
    assert hits[0].message.kind == MessageKind.BOT


async def test_words_match_as_prefixes_in_any_case_and_all_must_appear(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    both = await _message(uow, alice, conversation, "PARIS is the capital of France")
    await _message(uow, alice, conversation, "Paris, Texas is a film")

    assert [h.message.id for h in await _find(uow, alice, "pari fran") if h.message] == [both]
    assert await _count(uow, alice, "paris") == 2
    assert await _find(uow, alice, "aris") == []  # a prefix, not any substring


async def test_better_match_comes_first(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation = await _conversation(uow, alice)
    weak = await _message(
        uow,
        alice,
        conversation,
        "We talked about many things today, the weather, the trains, lunch, and one"
        " small mention of an octopus somewhere near the end of a long afternoon.",
    )
    strong = await _message(uow, alice, conversation, "Octopus! An octopus has three hearts.")

    hits = await _find(uow, alice, "octopus")

    assert [h.message.id for h in hits if h.message] == [strong, weak]


async def test_snippet_marks_the_matches_and_cuts_long_text(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice, "Tea <b>notes</b>")
    filler = " ".join(f"word{i}" for i in range(60))
    await _message(uow, alice, conversation, f"{filler} oolong tea {filler}")

    [title_hit] = await _find(uow, alice, "notes")
    [message_hit] = await _find(uow, alice, "oolong")

    assert title_hit.message is None
    assert _snippet(title_hit) == "Tea <b>[notes]</b>"
    snippet = _snippet(message_hit)
    assert "[oolong]" in snippet
    assert snippet.startswith("…")
    assert snippet.endswith("…")
    assert len(snippet) < 300
    assert all(p.text for p in message_hit.snippet)


async def test_pages_walk_the_ranking_without_repeats(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice, "heron")
    for i in range(6):
        await _message(uow, alice, conversation, f"heron {' '.join(['x'] * i)}")

    everything = await _find(uow, alice, "heron")
    pages = [await _find(uow, alice, "heron", limit=3, offset=o) for o in (0, 3, 6)]

    assert len(everything) == 7
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [_key(h) for p in pages for h in p] == [_key(h) for h in everything]


def _key(hit: SearchHit) -> uuid.UUID:
    return hit.message.id if hit.message else hit.conversation.id


async def test_edits_follow_into_the_index(uow: UnitOfWorkFactory, alice: uuid.UUID) -> None:
    conversation = await _conversation(uow, alice, "Old name")
    async with uow() as unit:
        reply = await unit.messages.add(
            user_id=alice,
            conversation_id=conversation.id,
            kind=MessageKind.BOT,
            text="",
            status=MessageStatus.GENERATING,
        )
        await unit.commit()
    async with uow() as unit:
        await unit.conversations.update(
            user_id=alice, conversation_id=conversation.id, changes={"title": "Fresh name"}
        )
        await unit.messages.finish(
            user_id=alice,
            message_id=reply.id,
            text="Finished thought about kestrels",
            status=MessageStatus.COMPLETE,
            finish_reason="stop",
            usage=None,
            dropped_messages=None,
        )
        await unit.commit()

    assert await _find(uow, alice, "old") == []
    assert [h.message for h in await _find(uow, alice, "fresh")] == [None]
    assert [h.message.id for h in await _find(uow, alice, "kestrels") if h.message] == [reply.id]

    async with uow() as unit:
        await unit.conversations.update(
            user_id=alice, conversation_id=conversation.id, changes={"title": None}
        )
        await unit.commit()
    assert await _find(uow, alice, "fresh") == []


async def test_deleted_conversations_leave_the_index(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    gone = await _conversation(uow, alice, "Puffin plans")
    await _message(uow, alice, gone, "puffins nest in burrows")
    kept = await _conversation(uow, alice)
    kept_message = await _message(uow, alice, kept, "a puffin eats fish")
    async with uow() as unit:
        assert await unit.conversations.delete(user_id=alice, conversation_id=gone.id)
        await unit.commit()

    hits = await _find(uow, alice, "puffin")

    assert [(h.conversation.id, h.message.id if h.message else None) for h in hits] == [
        (kept.id, kept_message)
    ]
    assert await _count(uow, alice, "puffin") == 1


async def test_uncommitted_writes_are_not_found_by_others(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    conversation = await _conversation(uow, alice)
    async with uow() as unit:
        await unit.messages.add(
            user_id=alice,
            conversation_id=conversation.id,
            kind=MessageKind.USER,
            text="ephemeral gannet",
            status=MessageStatus.COMPLETE,
        )
        # Not committed: rolled back on exit, index included.
    assert await _find(uow, alice, "gannet") == []


HOSTILE = [
    '"',
    '"unbalanced',
    "NEAR(a b)",
    "a NEAR b",
    "*",
    "pen*",
    "-pen",
    "pen -ink",
    "pen OR ink",
    "pen AND NOT ink",
    "^pen",
    "body:pen",
    "user_id:pen",
    "{body}: pen",
    "(pen",
    "pen)",
    "'; DROP TABLE messages; --",
    "o'neil",
    "pen & ink | !quill <-> nib:*",
    "\\",
    "\x00pen",
    "😀 pen",
    "ペン",
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_query_syntax_typed_by_users_is_only_words(
    uow: UnitOfWorkFactory, alice: uuid.UUID, query: str
) -> None:
    conversation = await _conversation(uow, alice, "pen and ink")
    await _message(uow, alice, conversation, "o'neil draws with a pen (and ink) — ペン")
    service = SearchService(uow)

    page = await service.search(alice, query)

    assert page.total_count == len(page.edges)
    words = [w.casefold() for w in search_terms(query)]
    for _, hit in page.edges:
        found = hit.message.text if hit.message else hit.conversation.title or ""
        assert all(w in found.casefold() for w in words)


async def test_hostile_terms_given_straight_to_the_repository_do_not_fail(
    uow: UnitOfWorkFactory, alice: uuid.UUID
) -> None:
    # The service only passes words; the repository must hold even if it did not.
    conversation = await _conversation(uow, alice, "pen")
    await _message(uow, alice, conversation, "pen")
    for terms in (['"'], ["'"], ['a"b'], ["pen", "*"], ["NEAR"], ["-"], [":*"], ["\\"]):
        async with uow() as unit:
            await unit.search.find(user_id=alice, terms=terms, limit=5, offset=0)
            await unit.search.count(user_id=alice, terms=terms)


async def test_the_migration_indexes_rows_written_before_it(empty_db_url: str) -> None:
    """Rows from before the index existed are found once the database is upgraded."""
    url = empty_db_url
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0001")
    engine = create_db_engine(url)
    try:
        uow = make_uow_factory(create_session_factory(engine))
        user = uuid.uuid4()
        titled = await insert_conversation(engine, user, "Meerkat diary")
        said = await insert_message(
            engine,
            user_id=user,
            conversation_id=titled,
            seq=1,
            kind=MessageKind.BOT,
            text="meerkats stand guard",
        )
        await insert_message(
            engine,
            user_id=user,
            conversation_id=titled,
            seq=2,
            kind=MessageKind.SYSTEM,
            text="meerkat system prompt",
        )
        await engine.dispose()

        await migrate(url)

        hits = await _find(uow, user, "meerkat")
        assert sorted(str(h.message.id if h.message else None) for h in hits) == sorted(
            [str(said), "None"]
        )
        # And the index keeps following writes after the upgrade.
        async with uow() as unit:
            conversation = await unit.conversations.get(user_id=user, conversation_id=titled)
        assert conversation is not None
        later = await _message(uow, user, conversation, "meerkat pups", MessageKind.USER)
        assert later in {h.message.id for h in await _find(uow, user, "pups") if h.message}
    finally:
        await engine.dispose()


async def test_the_migration_downgrades_cleanly(empty_db_url: str) -> None:
    await migrate(empty_db_url)
    await asyncio.to_thread(command.downgrade, alembic_config(empty_db_url), "0001")
    engine = create_db_engine(empty_db_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("messages")}
            )
    finally:
        await engine.dispose()
    assert not tables & SEARCH_TABLES
    assert "search_vector" not in columns
    await migrate(empty_db_url)  # and up again


SQLITE_TRIGGERS = {
    f"search_{name}"
    for name in (
        "entries_insert",
        "entries_update",
        "entries_delete",
        "messages_insert",
        "messages_update",
        "messages_delete",
        "conversations_insert",
        "conversations_update",
        "conversations_delete",
    )
}


async def test_head_keeps_every_search_trigger(backend: str, engine: AsyncEngine) -> None:
    """A later SQLite batch migration that recreates messages or conversations drops
    their triggers with the old table; it must create them again (see 0002)."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL's index is generated columns, not triggers")
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        )
        names = {row[0] for row in rows}
    assert names >= SQLITE_TRIGGERS, f"missing: {sorted(SQLITE_TRIGGERS - names)}"
