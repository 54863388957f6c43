"""The app as a whole: health, restart, limits, introspection switch, schema file, model."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query
from starlette.testclient import TestClient
from tests.conftest import DEFAULT_MODEL_PATH, REPO_ROOT
from tests.integration.api.conftest import Api, AppFactory

from llamaql.api.schema import build_schema
from llamaql.config import ApiConfig

DEEP = "{ conversations { edges { node { messages { edges { node { id } } } } } } }"


def test_health_is_503_until_started_then_ok(make_app: AppFactory) -> None:
    app = make_app()
    cold = TestClient(app)  # no `with`: lifespan has not run
    response = cold.get("/health")
    assert (response.status_code, response.json()) == (503, {"status": "starting"})
    live = cold.get("/health/live")  # the process is up, ready or not
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    with TestClient(app) as client:
        response = client.get("/health")
        assert (response.status_code, response.json()) == (
            200,
            {"status": "ok", "database": "ok"},
        )
        assert client.get("/health/live").status_code == 200


def test_conversations_survive_a_restart(make_app: AppFactory) -> None:
    with TestClient(make_app()) as client:
        created = Api(client).create(title="kept", options={"seed": 3})
    with TestClient(make_app()) as client:
        found = Api(client).data(
            "query($id: ID!) { conversation(id: $id) { title options { seed } } }",
            {"id": created["id"]},
        )
    assert found == {"conversation": {"title": "kept", "options": {"seed": 3}}}


def test_graphiql_is_served(api: Api) -> None:
    response = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_introspection_can_be_turned_off(make_app: AppFactory) -> None:
    introspect = "{ __schema { queryType { name } } }"
    with TestClient(make_app(introspection=False)) as client:
        api = Api(client)
        body = api.post(introspect)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "introspection" in body["errors"][0]["message"].lower()
        assert api.data("{ conversations { totalCount } }") == {"conversations": {"totalCount": 0}}
    with TestClient(make_app()) as client:
        assert "errors" not in Api(client).post(introspect)


def test_query_depth_is_limited(make_app: AppFactory) -> None:
    with TestClient(make_app(max_query_depth=4)) as client:
        body = Api(client).post(DEEP)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "exceeds maximum operation depth of 4" in body["errors"][0]["message"]


def test_cached_validation_keeps_refusing_and_is_per_app(make_app: AppFactory) -> None:
    # Validation results are cached by (schema, document, rules): a repeated document is
    # refused every time, and an app with other limits does not inherit the verdict.
    with TestClient(make_app(max_query_depth=4)) as client:
        api = Api(client)
        for _ in range(3):
            body = api.post(DEEP)
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert "exceeds maximum operation depth of 4" in body["errors"][0]["message"]
    with TestClient(make_app()) as client:
        body = Api(client).post(DEEP)
    assert "errors" not in body, body.get("errors")


def test_aliases_are_limited(make_app: AppFactory) -> None:
    query = "{ a: conversations { totalCount } b: conversations { totalCount } }"
    with TestClient(make_app(max_aliases=1)) as client:
        api = Api(client)
        body = api.post(query)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "aliases" in body["errors"][0]["message"]
        assert "errors" not in api.post("{ a: conversations { totalCount } }")


def test_query_tokens_are_limited(make_app: AppFactory) -> None:
    with TestClient(make_app(max_query_tokens=12)) as client:
        body = Api(client).post(DEEP)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "tokens" in body["errors"][0]["message"]


def test_committed_schema_matches_the_code() -> None:
    committed = (REPO_ROOT / "schema.graphql").read_text()
    current = build_schema(ApiConfig()).as_str() + "\n"
    assert committed == current, "schema.graphql is out of date: run `make schema`"


@pytest.mark.model
@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="default model not fetched")
def test_model_query_reads_the_gguf(api: Api) -> None:
    model = api.data(
        "{ model { name path contextSize trainedContext backend device gpuLayers threads"
        " chatTemplate } }"
    )["model"]
    assert "smollm2" in model["name"].lower()
    assert model["path"] == str(DEFAULT_MODEL_PATH)
    assert model["trainedContext"] == model["contextSize"] == 8192
    assert model["chatTemplate"] is True
    assert model["backend"] == "cpu"
    assert model["threads"] >= 1


def test_missing_model_file_is_an_engine_error(make_app: AppFactory, tmp_path: object) -> None:
    with TestClient(make_app(model_path=f"{tmp_path}/absent.gguf")) as client:
        body = Api(client).post("{ model { name } }")
    assert body["errors"][0]["extensions"]["code"] == "ENGINE_ERROR"
    assert "make model" in body["errors"][0]["message"]


def test_graphiql_introspection_fits_the_default_limits(api: Api) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    body = api.post(query, user=None)
    assert "errors" not in body, body["errors"]
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Conversation", "Message", "ModelInfo", "ErrorCode", "MessageFailed"} <= names
