"""A remote llamaql: `llamaql serve` with LLAMAQL_ENGINE_URL, no model file of its own,
its replies streamed from a real OpenAI-compatible server (llama-cpp-python's, on the
default model). A small context and one reply at a time with one waiting, so
CONTEXT_OVERFLOW and QUEUE_FULL are reachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.chat.live import Server, require_model, stopped_cleanly
from tests.integration.model_files import SECOND_MODEL, two_models
from tests.integration.remote.upstream import API_KEY, ScriptedServer, Upstream

CONTEXT_SIZE = 512
# The aliases the two-model upstream lists.
UPSTREAM_DEFAULT = "smol"
UPSTREAM_Q8 = SECOND_MODEL


def remote_server(folder: Path, engine_url: str, **env: str) -> Server:
    return Server(
        database=folder / "remote.db",
        log=folder / "server.log",
        env={
            "LLAMAQL_ENGINE_URL": engine_url,
            "LLAMAQL_ENGINE_API_KEY": API_KEY,
            # No model here: the file named does not exist.
            "LLAMAQL_MODEL_PATH": str(folder / "no-such-model.gguf"),
            "LLAMAQL_CONTEXT_SIZE": str(CONTEXT_SIZE),
            "LLAMAQL_PARALLEL": "1",
            "LLAMAQL_QUEUE_SIZE": "1",
            "LLAMAQL_AUTO_TITLE": "false",
            **env,
        },
    ).start()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    require_model()
    pytest.importorskip("fastapi", reason="llama_cpp.server needs the dev extra")
    server = Upstream(tmp_path_factory.mktemp("upstream") / "llama_cpp_server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def two_model_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """llama_cpp.server serving the default model and a Q8_0 copy, by alias."""
    pytest.importorskip("fastapi", reason="llama_cpp.server needs the dev extra")
    folder = tmp_path_factory.mktemp("two-model-upstream")
    default, q8 = two_models(folder)
    models = {UPSTREAM_DEFAULT: default, UPSTREAM_Q8: q8}
    server = Upstream(folder / "llama_cpp_server.log", models=models).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def remote_two_models(
    tmp_path_factory: pytest.TempPathFactory, two_model_upstream: Upstream
) -> Iterator[Server]:
    server = remote_server(tmp_path_factory.mktemp("remote-two"), two_model_upstream.api_url)
    yield server
    stopped_cleanly(server)


@pytest.fixture(scope="session")
def remote(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Server]:
    server = remote_server(tmp_path_factory.mktemp("remote"), upstream.api_url)
    yield server
    stopped_cleanly(server)


@pytest.fixture
def dying(tmp_path: Path) -> Iterator[Server]:
    with ScriptedServer() as engine:
        server = remote_server(tmp_path, engine.api_url)
        yield server
        stopped_cleanly(server)


@pytest.fixture
def endless() -> Iterator[ScriptedServer]:
    with ScriptedServer(endless=True) as engine:
        yield engine
