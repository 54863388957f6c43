"""A user's concurrent database work is capped (LLAMAQL_DB_UNITS_PER_USER), on the real
app and a real SQLite file: connections checked out of the pool are counted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool
from starlette.testclient import TestClient
from tests.integration.api.conftest import ALICE, Api, AppFactory


class CheckedOut:
    """The most pool connections in use at once while it listens."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def checkout(self, *_args: Any) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def checkin(self, *_args: Any) -> None:
        self.now -= 1


@pytest.fixture
def checked_out() -> Iterator[CheckedOut]:
    counter = CheckedOut()
    event.listen(Pool, "checkout", counter.checkout)
    event.listen(Pool, "checkin", counter.checkin)
    yield counter
    event.remove(Pool, "checkout", counter.checkout)
    event.remove(Pool, "checkin", counter.checkin)


def _aliased_lookups(api: Api, count: int) -> tuple[str, dict[str, Any]]:
    """One document with `count` root fields: Strawberry runs them concurrently."""
    ids = [api.create()["id"] for _ in range(count)]
    fields = " ".join(f"c{i}: conversation(id: $id{i}) {{ id }}" for i in range(count))
    variables = " ".join(f"$id{i}: ID!" for i in range(count))
    return f"query({variables}) {{ {fields} }}", {f"id{i}": cid for i, cid in enumerate(ids)}


@pytest.mark.parametrize("units", [1, 2])
def test_one_users_operations_hold_at_most_their_share_of_connections(
    make_app: AppFactory, checked_out: CheckedOut, units: int
) -> None:
    with TestClient(make_app(db_units_per_user=units)) as client:
        api = Api(client)
        query, variables = _aliased_lookups(api, 12)
        checked_out.peak = checked_out.now
        data = api.data(query, variables, user=ALICE)
    assert sorted(node["id"] for node in data.values()) == sorted(variables.values())
    assert 1 <= checked_out.peak <= units


def test_without_a_tight_share_the_same_document_uses_more_connections(
    make_app: AppFactory, checked_out: CheckedOut
) -> None:
    # The control: the document above really does open its units concurrently, so the
    # bound in the test above comes from the share, not from serial execution.
    with TestClient(make_app(db_units_per_user=12)) as client:
        api = Api(client)
        query, variables = _aliased_lookups(api, 12)
        checked_out.peak = checked_out.now
        api.data(query, variables, user=ALICE)
    assert checked_out.peak > 2
