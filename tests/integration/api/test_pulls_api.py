"""pullModel, deleteModel and pullProgress at the API's door: who may call them, and
what a bad request gets (a coded error, nothing fetched, nothing removed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.integration.api.conftest import ALICE, BOB, Api, AppFactory
from tests.integration.pulls.files_server import FileServer, file_server

PULL = "mutation($url: String!, $name: String) { pullModel(url: $url, name: $name) }"
DELETE = "mutation($name: String!) { deleteModel(name: $name) }"
PROGRESS = "subscription($id: ID!) { pullProgress(id: $id) { state error { code } } }"


@pytest.fixture
def files() -> Iterator[FileServer]:
    with file_server() as server:
        yield server


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "kept.gguf").write_bytes(b"GGUF")
    return folder


@pytest.fixture
def admin_api(make_app: AppFactory, models_dir: Path) -> Iterator[Api]:
    """The API with ALICE as the only model admin."""
    app = make_app(models_dir=models_dir, model_admins=ALICE)
    with TestClient(app) as client:
        yield Api(client)


def test_a_non_admin_may_not_pull_and_nothing_is_fetched(
    admin_api: Api, files: FileServer, models_dir: Path
) -> None:
    codes = admin_api.codes(PULL, {"url": files.file_url("/m.gguf")}, user=BOB)
    assert codes == ["FORBIDDEN"]
    assert files.behaviour.requests == []
    assert sorted(p.name for p in models_dir.iterdir()) == ["kept.gguf"]


def test_a_non_admin_may_not_delete(admin_api: Api, models_dir: Path) -> None:
    assert admin_api.codes(DELETE, {"name": "kept"}, user=BOB) == ["FORBIDDEN"]
    assert (models_dir / "kept.gguf").is_file()


def test_without_admins_nobody_may_pull(api: Api, files: FileServer) -> None:
    assert api.codes(PULL, {"url": files.file_url("/m.gguf")}) == ["FORBIDDEN"]


def test_an_anonymous_caller_is_unauthenticated(admin_api: Api) -> None:
    assert admin_api.codes(DELETE, {"name": "kept"}, user=None) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("name", ["../x", "../../etc/passwd", "a/b", ".kept", ""])
def test_a_name_that_is_not_a_model_name_is_refused(
    admin_api: Api, files: FileServer, models_dir: Path, name: str
) -> None:
    pulled = admin_api.post(PULL, {"url": files.file_url("/m.gguf"), "name": name})
    assert pulled["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "is not a model name" in pulled["errors"][0]["message"]
    assert admin_api.codes(DELETE, {"name": name}) == ["BAD_USER_INPUT"]
    assert files.behaviour.requests == []
    written = {p.name for p in models_dir.parent.rglob("*") if p.is_file()}
    assert written == {"kept.gguf", "llamaql.db"}


def test_bad_urls_are_refused(admin_api: Api) -> None:
    for url in ("ftp://example.com/m.gguf", "file:///etc/passwd", "not a url"):
        assert admin_api.codes(PULL, {"url": url}) == ["BAD_USER_INPUT"], url


def test_an_admin_deletes_a_model_and_only_a_model(admin_api: Api, models_dir: Path) -> None:
    assert admin_api.data(DELETE, {"name": "kept"}) == {"deleteModel": "kept"}
    assert not (models_dir / "kept.gguf").exists()
    assert admin_api.codes(DELETE, {"name": "kept"}) == ["NOT_FOUND"]


def test_a_non_admin_may_not_watch_a_pull(admin_api: Api) -> None:
    with admin_api.client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"]
    ) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-User-ID": BOB}})
        assert ws.receive_json() == {"type": "connection_ack"}
        variables = {"id": "0b5f2c1e-3d4a-4e5f-8a9b-1c2d3e4f5a6b"}
        payload = {"query": PROGRESS, "variables": variables}
        ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        refused = ws.receive_json()
    assert refused["type"] in ("next", "error"), refused
    errors = refused["payload"]["errors"] if refused["type"] == "next" else refused["payload"]
    assert [error["extensions"]["code"] for error in errors] == ["FORBIDDEN"]
