"""SQL implementations of the persistence ports (ports/repositories.py)."""

from llamaql.persistence.repositories.conversations import SqlConversationRepository
from llamaql.persistence.repositories.messages import SqlMessageRepository
from llamaql.persistence.repositories.search import SqlSearchRepository
from llamaql.persistence.repositories.uow import SqlUnitOfWork, make_uow_factory

__all__ = [
    "SqlConversationRepository",
    "SqlMessageRepository",
    "SqlSearchRepository",
    "SqlUnitOfWork",
    "make_uow_factory",
]
