"""The query cost limit through the real app: fan-out weighed by `first`, refused early."""

from __future__ import annotations

from tests.integration.api.conftest import Api

PAGE = "conversations(first: 100) { edges { node { messages(first: 100) { totalCount } } } }"
FAN_OUT = "{ " + " ".join(f"a{i}: {PAGE}" for i in range(25)) + " }"


def test_a_fanned_out_query_is_refused_stating_its_cost(api: Api) -> None:
    body = api.post(FAN_OUT)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    message = body["errors"][0]["message"]
    assert "252500" in message  # 25 x (100 conversations + 100 x 100 messages)
    assert "20000" in message


def test_variables_count_like_literals(api: Api) -> None:
    query = (
        "query($n: Int, $m: Int) { conversations(first: $n) "
        "{ edges { node { messages(first: $m) { totalCount } } } } }"
    )
    refused = api.post(query, {"n": 100, "m": 200})["errors"]
    assert [e["extensions"]["code"] for e in refused] == ["BAD_USER_INPUT"]
    assert "20100 list items" in refused[0]["message"]
    assert api.data(query, {"n": 100, "m": 100})["conversations"]["edges"] == []


def test_ordinary_pages_pass(api: Api) -> None:
    api.create(title="one")
    data = api.data("{ " + PAGE + " }")
    assert len(data["conversations"]["edges"]) == 1
