"""Starting a reply: the checks, the conversation's turn and history read, the claim,
the prompt, then the submit; a request refused here writes nothing.

A conversation busy only because its last reply waits for the database is waited for
(at most LLAMAQL_DB_TIMEOUT_SECONDS) and read again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from llamaql.config import ChatConfig
from llamaql.ports.engine import Engine, PreparedPrompt
from llamaql.ports.errors import ConversationBusyError, DatabaseUnavailableError, DomainError
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.services.branching import FindTurn, Turn
from llamaql.services.chat.checks import check_text, history_limit, prepare_prompt, queue_full_error
from llamaql.services.chat.events import conversation_prompt
from llamaql.services.chat.generation import Generation
from llamaql.services.chat.live_replies import LiveReplies
from llamaql.services.chat.reply_limit import ReplyLimit
from llamaql.services.chat.submitting import ExchangeSubmitter
from llamaql.services.options import sampling_options


class ReplyStarter:
    """Checks, prepares and submits each reply of ChatService's sends."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        engine: Engine,
        config: ChatConfig,
        *,
        live: LiveReplies,
        reply_limit: ReplyLimit,
        submitter: ExchangeSubmitter,
        db_timeout_s: float,
    ) -> None:
        self._uow_factory = uow_factory
        self._engine = engine
        self._config = config
        self._live = live
        self._reply_limit = reply_limit
        self._submitter = submitter
        self._db_timeout_s = db_timeout_s

    async def _wait_for_save(self, conversation_id: uuid.UUID, waited: bool) -> None:
        """The conversation is busy. When that is only its last reply waiting for the
        database to take it, wait for that save (at most LLAMAQL_DB_TIMEOUT_SECONDS)
        and let the caller read the conversation again; otherwise it is busy."""
        pending = self._live.of_conversation(conversation_id)
        if waited or pending is None or not pending.saving:
            raise ConversationBusyError()
        if not await pending.saved(self._db_timeout_s):
            raise DatabaseUnavailableError(
                "the conversation's last reply is still waiting for the database; try again shortly"
            )

    async def start(
        self,
        user_id: uuid.UUID,
        find_turn: FindTurn,
        text: str | None,
        request_options: Mapping[str, Any],
        cancel_on_close: bool,
    ) -> Generation:
        try:
            turn, seen, prompt = await self._prepare(user_id, find_turn, text, request_options)
        except BaseException:
            # Refused before its submit: an idle engine stops waiting for this reply
            # (ChatService announced it with expect_reply) to join its first step.
            self._engine.reply_abandoned()
            raise
        return await self._submitter.submit(
            user_id=user_id, turn=turn, seen=seen, prompt=prompt, cancel_on_close=cancel_on_close
        )

    async def _prepare(
        self,
        user_id: uuid.UUID,
        find_turn: FindTurn,
        text: str | None,
        request_options: Mapping[str, Any],
    ) -> tuple[Turn, int, PreparedPrompt]:
        """The checks, the reads, the claim and the prompt: everything before the submit
        (the conversation is claimed when this returns)."""
        if self._live.closing:
            raise DomainError("the server is shutting down", code="INTERNAL", retryable=True)
        if text is not None:  # regenerate sends no text: it reuses a stored message
            check_text(text, max_chars=self._config.max_message_chars)
        request = sampling_options(request_options)
        for waited in (False, True):
            async with self._uow_factory() as uow:
                turn = await find_turn(uow)
                conversation = turn.conversation
                conversation_id = conversation.id
                history = await uow.branches.history(
                    user_id=user_id, leaf_id=turn.parent_id, limit=history_limit(self._engine)
                )
                seen, generating, live = await self._reply_limit.counts(
                    uow, user_id=user_id, conversation_id=conversation_id
                )
            if not generating:  # busy says more; the stored exchange counts again, locked
                self._reply_limit.refuse_at(live)
            # Claimed before the next await: a concurrent send in this process sees it busy.
            if not generating and self._live.claim(conversation_id):
                break
            await self._wait_for_save(conversation_id, waited)
        try:
            sampling = conversation.options.overridden_by(request)
            if not self._engine.has_room():
                raise queue_full_error()
            messages = conversation_prompt(
                conversation, history, turn.text, self._config.system_prompt
            )
            prompt = await prepare_prompt(
                self._engine, messages, sampling, model=conversation.model, owner=str(user_id)
            )
        except BaseException:
            self._live.unclaim(conversation_id)
            raise
        return turn, seen, prompt
