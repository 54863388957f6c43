"""The query cost limit as a property (bench/reliability/cost_documents.py): documents
drawn by Hypothesis, with variables, document defaults, aliases and fragments, posted
to the real app on a real SQLite file holding 100 conversations of 6 messages, with the
smallest limit (100 items). No served query returns more list items than the limit or
than its own cost. Derandomized here, so a run is repeatable (with the limit counting a
variable as 20 unless it came as a JSON integer, 10 of these 100 documents got 120 to
300 items); `python -m bench.reliability cost` runs it larger, against `llamaql serve`."""

from __future__ import annotations

import json
from typing import Any

from bench.reliability.cost_documents import CONVERSATIONS, LIMIT, run_property, seed
from starlette.testclient import TestClient
from tests.integration.api.conftest import ALICE, Api, AppFactory

from llamaql.api.schema import build_schema
from llamaql.config import Config

EXAMPLES = 100  # about ten seconds of CPU; the reliability figure runs more


def test_no_served_query_returns_more_items_than_the_limit(
    make_app: AppFactory, config: Config
) -> None:
    with TestClient(make_app(max_query_cost=LIMIT)) as client:
        api = Api(client)
        ids = [api.create(title=f"c{i}")["id"] for i in range(CONVERSATIONS)]
        uow_factory: Any = client.app.state.container.resolve("uow_factory")  # type: ignore[attr-defined]
        client.portal.call(seed, uow_factory, ALICE, ids)  # type: ignore[union-attr]

        def post(document: str, variables: dict[str, Any]) -> dict[str, Any]:
            return api.post(document, variables)

        schema = build_schema(config.api)._schema
        run = run_property(schema, post, ids, EXAMPLES, derandomize=True)
    assert not run.violations, json.dumps(run.violations[:3], indent=1)
    # The property was put to the test: pages over 20 were served, the limit refused some.
    assert run.outcomes["served"] >= 1, run.outcomes
    assert run.outcomes["refused: cost"] >= 1, run.outcomes
    assert run.most_items > 20, run.outcomes
