"""The pure helpers behind sendMessage: prompt turns and titles."""

from __future__ import annotations

import uuid

from llamaql.persistence.models import Message, MessageKind
from llamaql.persistence.repositories.rows import message_value
from llamaql.ports.engine import ChatMessage
from llamaql.ports.values import Message as MessageValue
from llamaql.services.chat.events import build_prompt, title_from


def message(kind: MessageKind, text: str) -> MessageValue:
    row = Message(conversation_id=uuid.uuid4(), user_id=uuid.uuid4(), seq=1, kind=kind, text=text)
    return message_value(row)


def test_prompt_keeps_roles_and_skips_empty_replies() -> None:
    history = [
        message(MessageKind.USER, "Hi"),
        message(MessageKind.BOT, ""),  # cancelled before its first token
        message(MessageKind.USER, "Hello?"),
        message(MessageKind.BOT, "Hello!"),
    ]
    assert build_prompt("Be brief.", history, "Bye") == [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi\n\nHello?"),
        ChatMessage("assistant", "Hello!"),
        ChatMessage("user", "Bye"),
    ]


def test_empty_system_prompt_means_none() -> None:
    assert build_prompt("", [], "Hi") == [ChatMessage("user", "Hi")]


def test_title_is_one_trimmed_line() -> None:
    assert title_from("  Plan a\n\ttrip  ") == "Plan a trip"
    exactly = "x" * 60
    assert title_from(exactly) == exactly
    long_word = "y" * 100
    assert title_from(long_word) == "y" * 59 + "…"
