"""The query cost limit's property: whatever document a client writes, the list items a
served query returns never exceed LLAMAQL_MAX_QUERY_COST.

Hypothesis draws documents over the real schema's paged fields (`conversations`,
`conversation`, `search`, `messages`, `siblingIds`) with what slipped past the limit
before: `first` as a literal, null, absent, or a variable (`Int` or `Int!`, with or
without a document default, its value omitted, an int, an integral float, null, or a
value that is not an Int), aliases, and selections wrapped in named fragments and inline
fragments (typed or not). Each is posted to a server holding enough rows for a wrong
count to show; a response is refused (by the limit, or as a bad document or variables)
or its list items, counted in the returned JSON, are within the limit and within the
cost `document_cost` gives the same document. The test suite runs it small against the
app (tests/integration/api/test_query_cost_property_api.py); `python -m bench.reliability
cost` runs it larger against `llamaql serve`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLSchema, parse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from llamaql.api.query_cost import document_cost
from llamaql.persistence.models import MessageKind, MessageStatus
from llamaql.ports.repositories import UnitOfWorkFactory

LIMIT = 100  # the smallest LLAMAQL_MAX_QUERY_COST: few rows can exceed it
CONVERSATIONS = 100  # pages up to 100: a variable counted as 20 shows
MESSAGES_EACH = 6
WORD = "river"  # in every message: `search` finds them all
COST_REFUSAL = "list items, more than the limit"
# Orders matter: Hypothesis favours the first choices, so the ones a wrong count misses
# come first.
PAGE_SIZES = (100, 50, 30, 21, 10, 5, 3, 2, 1)
Post = Callable[[str, dict[str, Any]], dict[str, Any]]


async def seed(uow_factory: UnitOfWorkFactory, user: str, conversation_ids: list[str]) -> None:
    """MESSAGES_EACH completed messages in each conversation, one transaction each."""
    for cid in conversation_ids:
        async with uow_factory() as uow:
            for i in range(MESSAGES_EACH):
                await uow.messages.add(
                    user_id=uuid.UUID(user),
                    conversation_id=uuid.UUID(cid),
                    kind=MessageKind.USER if i % 2 == 0 else MessageKind.BOT,
                    text=f"{WORD} message {i}",
                    status=MessageStatus.COMPLETE,
                )
            await uow.commit()


class Drawer:
    """Draws one document and its variables from a Hypothesis data object."""

    def __init__(self, data: st.DataObject, conversation_ids: list[str]) -> None:
        self._data = data
        self._ids = conversation_ids
        self._declared: list[str] = []
        self._fragments: list[str] = []
        self.variables: dict[str, Any] = {}
        self._n = 0

    def _draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self._data.draw(strategy)

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def _value(self) -> Any:
        kind = self._draw(st.sampled_from(("float", "int", "float", "null", "bad")))
        size = self._draw(st.sampled_from(PAGE_SIZES))
        if kind == "int":
            return size
        if kind == "float":
            return float(size)  # integral: graphql-core runs it as the Int
        if kind == "null":
            return None
        return self._draw(st.sampled_from((str(size), size + 0.5, True)))

    def _first(self) -> str:
        """The `first` argument's text, empty when absent."""
        kind = self._draw(st.sampled_from(("var", "literal", "var", "absent", "var", "null")))
        if kind == "absent":
            return ""
        if kind == "literal":
            return f"first: {self._draw(st.sampled_from((*PAGE_SIZES, 0, 101)))}"
        if kind == "null":
            return "first: null"
        name = self._name("v")
        type_ = self._draw(st.sampled_from(("Int", "Int!", "Int")))
        default = self._draw(st.sampled_from(PAGE_SIZES) | st.none())
        self._declared.append(f"${name}: {type_}" + ("" if default is None else f" = {default}"))
        if self._draw(st.integers(0, 2)) > 0:  # else omitted: the default, or no value
            self.variables[name] = self._value()
        return f"first: ${name}"

    def _alias(self) -> str:
        return "" if self._draw(st.integers(0, 3)) == 3 else f"{self._name('a')}: "

    def _wrap(self, type_name: str, body: str) -> str:
        how = self._draw(st.sampled_from(("plain", "plain", "inline", "untyped", "fragment")))
        if how == "inline":
            return f"... on {type_name} {{ {body} }}"
        if how == "untyped":
            return f"... {{ {body} }}"
        if how == "fragment":
            name = self._name("F")
            self._fragments.append(f"fragment {name} on {type_name} {{ {body} }}")
            spreads = self._draw(st.integers(1, 2))  # a spread twice counts twice
            return " ".join(f"...{name}" for _ in range(spreads))
        return body

    def _connection(self, node_type: str, node_body: Callable[[], str]) -> str:
        parts = ["totalCount"] if self._draw(st.booleans()) else []
        if not parts or self._draw(st.booleans()):
            edge = self._wrap(f"{node_type}Edge", f"cursor node {{ {node_body()} }}")
            parts.append(f"{self._alias()}edges {{ {edge} }}")
        return self._wrap(f"{node_type}Connection", " ".join(parts))

    def _paged(self, name: str, node_type: str, node_body: Callable[[], str], *args: str) -> str:
        arguments = ", ".join(a for a in (*args, self._first()) if a)
        head = f"{self._alias()}{name}" + (f"({arguments})" if arguments else "")
        return f"{head} {{ {self._connection(node_type, node_body)} }}"

    def _message(self) -> str:
        parts = ["id"]
        if self._draw(st.booleans()):
            parts.append("text")
        if self._draw(st.integers(0, 3)) == 0:  # each costs a hundred: rarely
            parts.append(f"{self._alias()}siblingIds")
        return self._wrap("Message", " ".join(parts))

    def _conversation(self) -> str:
        parts = ["id"]
        for _ in range(self._draw(st.integers(0, 2))):
            parts.append(self._paged("messages", "Message", self._message))
        return self._wrap("Conversation", " ".join(parts))

    def _hit(self) -> str:
        parts = ["snippet"]
        if self._draw(st.booleans()):
            parts.append(f"{self._alias()}conversation {{ {self._conversation()} }}")
        if self._draw(st.booleans()):
            parts.append(f"message {{ {self._message()} }}")
        return self._wrap("SearchHit", " ".join(parts))

    def _root(self) -> str:
        kind = self._draw(st.sampled_from(("conversations", "conversations", "one", "search")))
        if kind == "conversations":
            return self._paged("conversations", "Conversation", self._conversation)
        if kind == "search":
            return self._paged("search", "SearchHit", self._hit, f'query: "{WORD}"')
        cid = self._draw(st.sampled_from(self._ids))
        return f'{self._alias()}conversation(id: "{cid}") {{ {self._conversation()} }}'

    def document(self) -> str:
        roots = [self._root() for _ in range(self._draw(st.integers(1, 3)))]
        body = self._wrap("Query", " ".join(roots))
        head = f"query({', '.join(self._declared)})" if self._declared else "query"
        return " ".join([f"{head} {{ {body} }}", *self._fragments])


def list_items(value: Any) -> int:
    """List items in a response's data: page edges and siblingIds, the items the cost
    limit bounds (the documents select no other list)."""
    if isinstance(value, list):
        return len(value) + sum(list_items(item) for item in value)
    if isinstance(value, dict):
        return sum(list_items(item) for item in value.values())
    return 0


@dataclass
class PropertyRun:
    """What the drawn documents got, and the ones that broke the property."""

    outcomes: Counter[str] = field(default_factory=Counter)
    most_items: int = 0
    violations: list[dict[str, Any]] = field(default_factory=list)


def _outcome(body: dict[str, Any]) -> str:
    errors = body.get("errors") or []
    if body.get("data") is not None:
        return "served with field errors" if errors else "served"
    message = errors[0].get("message", "") if errors else ""
    if COST_REFUSAL in message:
        return "refused: cost"
    if message.startswith("Variable '$"):
        return "refused: variables"
    return "refused: other"  # a bad document, or a page size out of range


def check(
    schema: GraphQLSchema, document: str, variables: dict[str, Any], body: dict[str, Any]
) -> tuple[str, int, str | None]:
    """(outcome, list items returned, what broke the property or None)."""
    outcome = _outcome(body)
    if not outcome.startswith("served"):
        codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or []}
        problem = None if codes == {"BAD_USER_INPUT"} else f"refused with codes {codes}"
        return outcome, 0, problem
    items = list_items(body["data"])
    cost = document_cost(schema, parse(document), None, variables)
    if items > LIMIT:
        return outcome, items, f"{items} list items returned, over the limit of {LIMIT}"
    if isinstance(cost, list) or items > cost:
        return outcome, items, f"{items} list items returned, over the document's cost {cost}"
    return outcome, items, None


def run_property(
    schema: GraphQLSchema,
    post: Post,
    conversation_ids: list[str],
    examples: int,
    *,
    derandomize: bool = False,
) -> PropertyRun:
    """Draw `examples` documents, post each, and check what came back."""
    run = PropertyRun()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        drawer = Drawer(data, conversation_ids)
        document = drawer.document()
        body = post(document, drawer.variables)
        outcome, items, problem = check(schema, document, drawer.variables, body)
        run.outcomes[outcome] += 1
        run.most_items = max(run.most_items, items)
        if problem is not None:
            run.violations.append(
                {
                    "problem": problem,
                    "document": document,
                    "variables": drawer.variables,
                    "errors": body.get("errors"),
                }
            )

    one()
    return run
