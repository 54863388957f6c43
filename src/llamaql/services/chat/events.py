"""What a sendMessage stream yields, and the small pure helpers the chat service uses.

Events are plain dataclasses: the GraphQL edge maps them to `MessageQueued`,
`TokenDelta`, `MessageCompleted` and `MessageFailed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from llamaql.ports.engine import ChatMessage, Role
from llamaql.ports.values import Conversation, Message, MessageKind

TITLE_CHARS = 60


@dataclass(frozen=True, slots=True)
class Queued:
    """The exchange is stored and queued; sent first, and again when the position moves."""

    user_message: Message
    assistant_message_id: uuid.UUID
    position: int
    loading: bool = False  # the reply waits for its model to load


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the reply's text."""

    message_id: uuid.UUID
    text: str


@dataclass(frozen=True, slots=True)
class Completed:
    """Terminal: the stored reply, COMPLETE or CANCELLED."""

    message: Message


@dataclass(frozen=True, slots=True)
class Failed:
    """Terminal: a refusal (nothing written, no assistant message) or a failed reply."""

    code: str
    reason: str
    retryable: bool
    assistant_message: Message | None = None


ChatEvent = Queued | Delta | Completed | Failed

_ROLES: dict[int, Role] = {
    MessageKind.SYSTEM: "system",
    MessageKind.BOT: "assistant",
    MessageKind.USER: "user",
}


def conversation_prompt(
    conversation: Conversation, history: Iterable[Message], text: str, default_system: str
) -> list[ChatMessage]:
    """`build_prompt` with the conversation's system prompt, or the server's default when
    it has none (an empty one means none at all)."""
    system = conversation.system_prompt
    return build_prompt(default_system if system is None else system, history, text)


def build_prompt(
    system_prompt: str | None, history: Iterable[Message], text: str
) -> list[ChatMessage]:
    """The chat to render: system prompt, earlier turns in order, then the new text.

    Empty replies (cancelled before their first token) are left out, and consecutive
    turns of one role are joined: a user message whose reply failed is followed by the
    next user message, and strict templates (Mistral's) refuse non-alternating roles.
    """
    turns: list[ChatMessage] = []
    if system_prompt:
        turns.append(ChatMessage(role="system", content=system_prompt))
    for message in [*history, None]:
        role: Role = "user" if message is None else _ROLES.get(message.kind, "user")
        content = text if message is None else message.text
        if not content.strip():
            continue
        if turns and turns[-1].role == role and role != "system":
            turns[-1] = ChatMessage(role=role, content=f"{turns[-1].content}\n\n{content}")
        else:
            turns.append(ChatMessage(role=role, content=content))
    return turns


def title_from(text: str) -> str:
    """A conversation title from its first message: one line, about 60 characters."""
    line = " ".join(text.split())
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[: TITLE_CHARS - 1]
    # End on a word boundary unless that would throw away most of the title.
    if " " in cut[TITLE_CHARS // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "…"
