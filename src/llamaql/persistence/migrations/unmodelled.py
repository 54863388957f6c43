"""Database objects that migrations create but the SQLModel tables do not describe.

The full-text search index (migration 0002) lives beside the tables: SQLite's
`search_entries` and FTS5 `search_fts` (with its shadow tables), PostgreSQL's generated
`search_vector` columns and their GIN indexes. Comparing the models with a database
must skip them, or autogenerate would offer to drop them.
"""

from __future__ import annotations

from alembic.runtime.environment import NameFilterParentNames, NameFilterType

SEARCH_TABLES = frozenset(
    {
        "search_entries",
        "search_fts",
        "search_fts_data",
        "search_fts_idx",
        "search_fts_docsize",
        "search_fts_config",
        "search_fts_content",
    }
)
SEARCH_COLUMNS = frozenset({("messages", "search_vector"), ("conversations", "search_vector")})
SEARCH_INDEXES = frozenset({"ix_messages_search_vector", "ix_conversations_search_vector"})


def include_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Alembic's `include_name` hook: False for the search index's objects."""
    if type_ == "table":
        return name not in SEARCH_TABLES
    if type_ == "column":
        return (parent_names.get("table_name"), name) not in SEARCH_COLUMNS
    if type_ == "index":
        return name not in SEARCH_INDEXES
    return True
