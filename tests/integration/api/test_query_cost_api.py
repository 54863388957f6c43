"""The query cost limit through the real app: fan-out weighed by `first`, refused early."""

from __future__ import annotations

import pytest
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


TWO_LEVELS = (
    "query($n: Int, $m: Int) { conversations(first: $n) "
    "{ edges { node { messages(first: $m) { totalCount } } } } }"
)


def test_an_integral_float_counts_as_the_int_it_runs_as(api: Api) -> None:
    # graphql-core runs `first: 100.0` as first=100: counted as 20 it was let through.
    refused = api.post(TWO_LEVELS, {"n": 100.0, "m": 200.0})
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
    assert "20100 list items" in refused["errors"][0]["message"]


def test_a_document_default_counts(api: Api) -> None:
    query = (
        "query($n: Int = 100, $m: Int = 200) { conversations(first: $n) "
        "{ edges { node { messages(first: $m) { totalCount } } } } }"
    )
    refused = api.post(query)
    assert refused["data"] is None
    assert "20100 list items" in refused["errors"][0]["message"]
    assert api.data(query, {"m": 100})["conversations"]["edges"] == []


def test_aliases_and_fragments_count(api: Api) -> None:
    query = """
    query($n: Int = 100) {
      a: conversations(first: $n) { ...Page }
      b: conversations(first: $n) { ...Page }
      c: conversations { ...Page }
    }
    fragment Page on ConversationConnection {
      edges { node { ... on Conversation { messages(first: 100) { totalCount } } } }
    }
    """
    refused = api.post(query)
    assert "22220 list items" in refused["errors"][0]["message"]  # 2 x 100x101 + 20x101


@pytest.mark.parametrize("value", ["100", 100.5])
def test_a_value_that_is_not_an_int_is_refused_before_anything_runs(
    api: Api, value: object
) -> None:
    api.create(title="one")
    body = api.post(TWO_LEVELS, {"n": value, "m": 1})
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "Int cannot represent non-integer value" in body["errors"][0]["message"]


def test_a_document_let_through_is_weighed_again_with_new_variables(api: Api) -> None:
    # The document's cost plan is kept after the first request; the second request's
    # variables still decide its cost.
    assert api.data(TWO_LEVELS, {"n": 10, "m": 10})["conversations"]["edges"] == []
    refused = api.post(TWO_LEVELS, {"n": 100, "m": 200})
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
    assert "20100 list items" in refused["errors"][0]["message"]
