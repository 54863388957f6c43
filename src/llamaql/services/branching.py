"""Where sendMessage, editMessage and regenerate put an exchange in the message tree.

Each resolves to a Turn before anything is written: the user message's parent (whose
branch the prompt is built from), the user's text, and for regenerate the stored user
message that gets another reply. The chat service then runs every turn the same way
(checks, busy, queue, store, stream), so the three obey one set of rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llamaql.ports.errors import BadInputError, ConversationBusyError, NotFoundError
from llamaql.ports.events import EventKind
from llamaql.ports.repositories import MAX_VERSIONS, UnitOfWork
from llamaql.ports.values import Conversation, Message, MessageKind


@dataclass(frozen=True, slots=True)
class Turn:
    """One exchange to store: a user message under `parent_id` (None: a first message)
    and a reply to it. `answered` is the stored user message a regenerate answers again
    (no new user message then); the prompt is the branch to `parent_id`, then `text`."""

    conversation: Conversation
    parent_id: uuid.UUID | None
    text: str
    answered: Message | None = None


FindTurn = Callable[[UnitOfWork], Awaitable[Turn]]
"""Reads what a turn needs in the caller's unit of work; raises a DomainError to refuse."""


def send_turn(*, user_id: uuid.UUID, conversation_id: uuid.UUID, text: str) -> FindTurn:
    """sendMessage: a new user message after the current branch's leaf."""

    async def find(uow: UnitOfWork) -> Turn:
        conversation = await _conversation(uow, user_id, conversation_id)
        return Turn(conversation, conversation.current_leaf_id, text)

    return find


def edit_turn(*, user_id: uuid.UUID, message_id: uuid.UUID, text: str) -> FindTurn:
    """editMessage: a new user message beside user message `message_id`."""

    async def find(uow: UnitOfWork) -> Turn:
        message = await _message(uow, user_id, message_id)
        if message.kind != MessageKind.USER:
            raise BadInputError(f"message {message_id} is not a user message; only those edit")
        await _room_for_another_version(uow, user_id, message_id)
        conversation = await _conversation(uow, user_id, message.conversation_id)
        return Turn(conversation, message.parent_id, text)

    return find


def regenerate_turn(*, user_id: uuid.UUID, message_id: uuid.UUID) -> FindTurn:
    """regenerate: a new reply beside assistant message `message_id`, to the same
    user message."""

    async def find(uow: UnitOfWork) -> Turn:
        reply = await _message(uow, user_id, message_id)
        if reply.kind != MessageKind.BOT:
            raise BadInputError(
                f"message {message_id} is not an assistant reply; only those regenerate"
            )
        question = None
        if reply.parent_id is not None:
            question = await uow.messages.get(user_id=user_id, message_id=reply.parent_id)
        if question is None or question.kind != MessageKind.USER:
            raise BadInputError(f"message {message_id} does not answer a user message")
        await _room_for_another_version(uow, user_id, message_id)
        conversation = await _conversation(uow, user_id, reply.conversation_id)
        return Turn(conversation, question.parent_id, question.text, answered=question)

    return find


async def choose_branch(
    uow: UnitOfWork, *, user_id: uuid.UUID, message_id: uuid.UUID
) -> Conversation:
    """selectBranch in the caller's unit of work: the branch through `message_id`, down
    to the newest leaf under it, becomes current. Refused while a reply is generating in
    the conversation (it would end up off the current branch). The caller commits."""
    message = await _message(uow, user_id, message_id)
    ids = {"user_id": user_id, "conversation_id": message.conversation_id}
    if await uow.conversations.get_for_update(**ids) is None:
        raise NotFoundError(f"message {message_id} not found")
    if await uow.messages.has_generating(**ids):
        raise ConversationBusyError()
    leaf = await uow.branches.newest_leaf_under(user_id=user_id, message_id=message_id)
    if leaf is None or not await uow.branches.set_current_leaf(**ids, leaf_id=leaf.id):
        raise NotFoundError(f"message {message_id} not found")
    uow.events.record(
        user_id=user_id,
        conversation_id=message.conversation_id,
        kind=EventKind.BRANCH_SELECTED,
        message_id=leaf.id,
    )
    return await _conversation(uow, user_id, message.conversation_id)


async def _room_for_another_version(
    uow: UnitOfWork, user_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    siblings = await uow.branches.sibling_ids(user_id=user_id, message_ids=[message_id])
    if len(siblings.get(message_id, ())) >= MAX_VERSIONS:
        raise BadInputError(
            f"message {message_id} already has {MAX_VERSIONS} versions, the most one "
            "message may have"
        )


async def _message(uow: UnitOfWork, user_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    message = await uow.messages.get(user_id=user_id, message_id=message_id)
    if message is None:
        raise NotFoundError(f"message {message_id} not found")
    return message


async def _conversation(
    uow: UnitOfWork, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation:
    conversation = await uow.conversations.get(user_id=user_id, conversation_id=conversation_id)
    if conversation is None:
        raise NotFoundError(f"conversation {conversation_id} not found")
    return conversation
