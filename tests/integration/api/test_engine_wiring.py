"""With an engine in the container, the app starts/stops it and `model` asks it."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.fakes.engine import FakeEngine
from tests.integration.api.conftest import Api, AppFactory

from llamaql.services.chat.service import ChatService


def test_engine_is_started_asked_and_stopped(make_app: AppFactory) -> None:
    engine = FakeEngine(context_tokens=2048)
    app = make_app(engine=engine)
    with TestClient(app) as client:
        assert engine._worker is not None
        assert not engine._worker.done()
        model = Api(client).data("{ model { name contextSize chatTemplate device } }")["model"]
        assert model == {"name": "fake", "contextSize": 2048, "chatTemplate": True, "device": "CPU"}
        assert isinstance(app.state.container.resolve(ChatService), ChatService)
    assert engine._worker.done()
