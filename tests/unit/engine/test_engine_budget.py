"""Context budget: oldest turns go first; system and the latest message always stay."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llamaql.engine.budget import FittedPrompt, fit_prompt
from llamaql.ports.engine import ChatMessage, ContextOverflowError


def render(messages: Sequence[ChatMessage]) -> str:
    return " ".join(f"<{m.role}> {m.content}" for m in messages) + " <assistant>"


def tokenize(text: str) -> list[int]:
    return list(range(len(text.split())))  # one token per word


def conversation(turns: int) -> list[ChatMessage]:
    messages = [ChatMessage("system", "be brief")]
    for i in range(turns):
        messages.append(ChatMessage("user", f"question {i} " + "w " * 8))
        messages.append(ChatMessage("assistant", f"answer {i} " + "w " * 8))
    messages.append(ChatMessage("user", "latest question"))
    return messages


def encode(messages: Sequence[ChatMessage]) -> tuple[str, list[int]]:
    text = render(messages)
    return text, tokenize(text)


def fit(messages: Sequence[ChatMessage], context: int, reply: int = 10) -> FittedPrompt:
    return fit_prompt(messages, encode=encode, context_size=context, reply_tokens=reply)


def test_everything_fits() -> None:
    fitted = fit(conversation(3), context=1000)
    assert fitted.dropped_messages == 0
    assert fitted.max_tokens == 10
    assert len(fitted.tokens) == len(render(conversation(3)).split())


def test_drops_oldest_whole_turns_keeping_system_and_latest() -> None:
    messages = conversation(5)  # each turn is 22 words; all: 118 words
    fitted = fit(messages, context=80)
    assert fitted.dropped_messages == 6  # three oldest turns (user + assistant each)
    assert fitted.text.startswith("<system> be brief <user> question 3")
    assert "latest question" in fitted.text
    assert len(fitted.tokens) + fitted.max_tokens <= 80


def test_only_latest_left_and_reply_shortened() -> None:
    fitted = fit(conversation(2), context=30, reply=100)
    assert fitted.dropped_messages == 4
    assert fitted.text == "<system> be brief <user> latest question <assistant>"
    assert fitted.max_tokens == 30 - len(fitted.tokens)


def test_latest_alone_does_not_fit() -> None:
    messages = [ChatMessage("system", "s"), ChatMessage("user", "word " * 200)]
    with pytest.raises(ContextOverflowError, match="does not fit in the context"):
        fit(messages, context=100)


def test_history_after_an_unanswered_user_message_is_dropped_as_a_turn() -> None:
    messages = [
        ChatMessage("user", "old " * 30),
        ChatMessage("user", "older follow-up " * 10),
        ChatMessage("assistant", "reply"),
        ChatMessage("user", "new"),
    ]
    fitted = fit(messages, context=40)
    assert fitted.dropped_messages == 1
    assert fitted.text.startswith("<user> older follow-up")
