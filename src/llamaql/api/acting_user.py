"""ActingUser: each operation's database work counts toward its user's share.

Set for the whole operation (a subscription's too), before any resolver runs, so every
unit of work it opens, and every task it starts, is capped by llamaql.persistence.db_share.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from llamaql.api.context import Context
from llamaql.ports.acting_user import acting_for, stop_acting


class ActingUser(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        user_id = context.user_id if isinstance(context, Context) else None
        token = acting_for(user_id)
        try:
            yield
        finally:
            stop_acting(token)
