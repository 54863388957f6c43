"""ContextUsageService on fakes: the send's own prompt preparation, nothing written."""

from __future__ import annotations

import uuid

import pytest
from tests.fakes.rig import SYSTEM_PROMPT, ChatRig, make_rig

from llamaql.config import ChatConfig
from llamaql.ports.errors import DomainError
from llamaql.services.context_usage import ContextUsage, ContextUsageService


@pytest.fixture
def rig() -> ChatRig:
    return make_rig(context_tokens=64)


def service(rig: ChatRig) -> ContextUsageService:
    config = ChatConfig(_env_file=None, system_prompt=SYSTEM_PROMPT)
    return ContextUsageService(rig.store.factory, rig.engine, config)


async def test_a_text_that_fits_reports_the_prompt_the_send_would_use(rig: ChatRig) -> None:
    cid = await rig.conversation(options={"max_tokens": 10})
    usage = await service(rig).usage(user_id=rig.user, conversation_id=cid, text="two words")
    # The fake counts a token per word plus one per message: system (4 words) and user (2).
    assert usage == ContextUsage(
        context_size=64, prompt_tokens=8, reply_tokens=10, dropped_messages=0, fits=True
    )
    assert rig.engine.handles == []  # prepared, never submitted
    assert rig.messages(cid) == []


async def test_a_text_that_cannot_fit_says_so_with_its_numbers(rig: ChatRig) -> None:
    cid = await rig.conversation(options={"max_tokens": 10})
    usage = await service(rig).usage(user_id=rig.user, conversation_id=cid, text="w " * 80)
    assert not usage.fits
    assert usage.prompt_tokens > 64
    assert usage.reply_tokens == 10


async def test_another_users_conversation_is_not_found(rig: ChatRig) -> None:
    cid = await rig.conversation(user=uuid.uuid4())
    with pytest.raises(DomainError) as caught:
        await service(rig).usage(user_id=rig.user, conversation_id=cid, text="hi")
    assert caught.value.code == "NOT_FOUND"


async def test_an_over_long_text_is_refused(rig: ChatRig) -> None:
    cid = await rig.conversation()
    with pytest.raises(DomainError) as caught:
        await service(rig).usage(user_id=rig.user, conversation_id=cid, text="x" * 40000)
    assert caught.value.code == "BAD_USER_INPUT"
