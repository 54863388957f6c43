"""document_cost: list items a document could return, through nesting and fragments."""

from __future__ import annotations

from graphql import parse

from llamaql.schema.query_cost import DEFAULT_FIRST, document_cost
from llamaql.services.branching import MAX_VERSIONS

NESTED = "{ conversations(first: 10) { edges { node { messages(first: 5) { totalCount } } } } }"
FRAGMENTS = """
query Q { a: conversations(first: 3) { ...F } b: conversations(first: 2) { ...F } }
fragment F on ConversationConnection {
  edges { node { ... on Conversation { messages(first: 4) { totalCount } } } }
}
"""


def cost(query: str, variables: dict[str, object] | None = None, name: str | None = None) -> int:
    return document_cost(parse(query), name, variables or {})


def test_plain_fields_cost_nothing() -> None:
    assert cost("{ model { name } conversation(id: 1) { id title } }") == 0


def test_lists_multiply_through_nesting() -> None:
    assert cost(NESTED) == 10 + 10 * 5


def test_absent_or_variable_first() -> None:
    assert cost("{ conversations { totalCount } }") == DEFAULT_FIRST
    assert cost("query($n: Int) { conversations(first: $n) { totalCount } }", {"n": 7}) == 7
    assert cost("query($n: Int) { conversations(first: $n) { totalCount } }") == DEFAULT_FIRST


def test_fragments_and_aliases_count() -> None:
    assert cost(FRAGMENTS, name="Q") == (3 + 3 * 4) + (2 + 2 * 4)


def test_a_fragment_cycle_does_not_loop() -> None:
    query = "{ conversations(first: 2) { ...A } } fragment A on X { ...B } fragment B on X { ...A }"
    assert cost(query) == 2


def test_sibling_ids_count_as_many_as_one_message_may_have() -> None:
    query = "{ conversation(id: 1) { messages(first: 10) { edges { node { siblingIds } } } } }"
    assert cost(query) == 10 + 10 * MAX_VERSIONS
