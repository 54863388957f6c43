"""Each user's share of the engine: at most N replies generating or queued at once.

Fair admission orders the queue but bounds nobody's share of it: one user with a few
sockets of subscriptions, resubmitting as each reply ends, held every sequence and every
queue place, and another user's first token waited 16-59 s behind them. So a send is
refused (`QUEUE_FULL`, retryable, nothing written) while its user already has
`LLAMAQL_MAX_LIVE_REPLIES_PER_USER` replies live.

The count is the database's: the user's GENERATING replies, on every socket and every
replica. That covers queued replies too, since a reply's row is written in the unit of
work that submits it. A send counts twice: early and without a lock, so a refusal costs
no prompt rendering; then under the user's lock in the unit of work that stores the
exchange, so two sends at the limit less one cannot both get in. Each count shares its
statement with the send's busy check (`counts`). Title requests store no reply and do
not count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from llamaql.ports.errors import ReplyLimitError
from llamaql.ports.repositories import UnitOfWork


@dataclass(frozen=True, slots=True)
class ReplyLimit:
    """At most `most` live replies per user. `alive_within_s` (replicas on PostgreSQL):
    a reply counts only while its replica's heartbeat is that recent, the same rule the
    sweep uses, so a stopped replica's leftovers never hold its users back."""

    most: int
    alive_within_s: float | None = None

    async def check(self, uow: UnitOfWork, *, user_id: uuid.UUID, lock: bool = False) -> None:
        """ReplyLimitError when the user has `most` live replies already. With `lock`,
        the count holds until `uow` ends: call it so in the unit that adds the reply."""
        if lock:
            await uow.messages.lock_user_replies(user_id=user_id)
        live = await uow.messages.count_live_replies(
            user_id=user_id, alive_within_s=self.alive_within_s
        )
        self.refuse_at(live)

    async def counts(
        self,
        uow: UnitOfWork,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        lock: bool = False,
    ) -> tuple[int, bool, int]:
        """The conversation's messages, whether one is generating, and the user's live
        replies (for `refuse_at`), in one statement; with `lock` as in `check`."""
        if lock:
            await uow.messages.lock_user_replies(user_id=user_id)
        return await uow.messages.exchange_counts(
            user_id=user_id, conversation_id=conversation_id, alive_within_s=self.alive_within_s
        )

    def refuse_at(self, live: int) -> None:
        """ReplyLimitError when `live` replies are the user's limit already."""
        if live >= self.most:
            raise ReplyLimitError(self.most)
