"""SQL implementations of the persistence ports (services/ports.py)."""

from llamaql.repositories.conversations import SqlConversationRepository
from llamaql.repositories.messages import SqlMessageRepository
from llamaql.repositories.search import SqlSearchRepository
from llamaql.repositories.uow import SqlUnitOfWork, make_uow_factory

__all__ = [
    "SqlConversationRepository",
    "SqlMessageRepository",
    "SqlSearchRepository",
    "SqlUnitOfWork",
    "make_uow_factory",
]
