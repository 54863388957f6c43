"""Model-written titles on fakes: cleaned, in the background, and a rename wins."""

from __future__ import annotations

import asyncio

import pytest
from tests.fakes.rig import ChatRig, drain, eventually, make_rig

from llamaql.services.chat.titles import TITLE_QUIET_S, clean_title


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ("Paris, the capital of France", "Paris, the capital of France"),
        ('"Baking bread with dragons"\nmore text', "Baking bread with dragons"),
        ("Title: **A trip to Rome**", "A trip to Rome"),
        ("\n\n  `Rivers`  ", "Rivers"),
        ("   ", ""),
    ],
)
def test_clean_title(answer: str, title: str) -> None:
    assert clean_title(answer) == title


@pytest.fixture
async def rig() -> ChatRig:
    made = make_rig(auto_title=True)
    await made.engine.start()
    return made


async def test_the_first_reply_brings_a_model_title(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script("The answer.")
    rig.engine.script('"Capital cities"')
    await drain(rig.send(cid, "What is the capital of France?"))
    await eventually(
        lambda: rig.store.conversations[cid].title == "Capital cities", "the model's title"
    )
    title_request = rig.engine.handles[1]
    assert title_request.background
    assert "What is the capital of France?" in title_request.prompt.text
    assert "The answer." in title_request.prompt.text
    rig.engine.script("Another answer.")
    await drain(rig.send(cid, "And of Spain?"))
    assert len(rig.engine.handles) == 3  # no second title
    await rig.engine.stop()


async def test_a_rename_before_the_title_arrives_wins(rig: ChatRig) -> None:
    cid = await rig.conversation()
    rig.engine.script("The answer.")
    title_script = rig.engine.script("Model title", paced=True)
    await drain(rig.send(cid, "Hello there"))
    await eventually(lambda: len(rig.engine.handles) == 2, "the title request")
    async with rig.store.factory() as uow:
        await uow.conversations.update(
            user_id=rig.user, conversation_id=cid, changes={"title": "Mine"}
        )
        await uow.commit()
    rig.engine.handles[1].allow(len(title_script.pieces))
    await eventually(lambda: rig.engine.handles[1].finished.is_set(), "the title reply")
    await rig.service.shutdown()
    assert rig.store.conversations[cid].title == "Mine"
    await rig.engine.stop()


async def test_titles_can_be_turned_off() -> None:
    rig = make_rig(auto_title=False)
    await rig.engine.start()
    cid = await rig.conversation()
    await drain(rig.send(cid, "Hello there"))
    await rig.service.shutdown()
    assert len(rig.engine.handles) == 1
    assert rig.store.conversations[cid].title == "Hello there"
    await rig.engine.stop()


async def test_a_title_waits_until_no_stream_has_been_open_for_a_while(rig: ChatRig) -> None:
    # A title asked for while another send streams begins only once every stream has
    # been closed for TITLE_QUIET_S: the next burst of sends meets none of its work.
    first, second = await rig.conversation(), await rig.conversation()
    rig.engine.script("The answer.")
    held = rig.engine.script("Still going", paced=True)
    rig.engine.script('"First title"')
    rig.engine.script('"Second title"')
    await drain(rig.send(first, "What is the capital of France?"))
    streaming = asyncio.create_task(drain(rig.send(second, "Tell me a story")))
    await eventually(lambda: len(rig.engine.handles) == 2, "the second send's request")
    await asyncio.sleep(TITLE_QUIET_S * 2)
    assert len(rig.engine.handles) == 2, "a title started while a stream was open"
    rig.engine.handles[1].allow(len(held.pieces))
    await streaming
    closed = asyncio.get_running_loop().time()
    await eventually(lambda: len(rig.engine.handles) == 4, "both titles")
    assert asyncio.get_running_loop().time() - closed >= TITLE_QUIET_S * 0.9
    assert all(handle.background for handle in rig.engine.handles[2:])
    await rig.service.shutdown()
    await rig.engine.stop()
