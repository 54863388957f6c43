"""ModelInfoService: the engine's models by name (the default one without a name), an
unknown name refused as bad input, and the header of the default file without an engine."""

from __future__ import annotations

import pytest
from tests.conftest import DEFAULT_MODEL_PATH
from tests.fakes.engine import FakeEngine

from llamaql.config import load_config
from llamaql.ports.errors import BadInputError
from llamaql.services.models_info import ModelInfoService


async def test_the_engine_answers_by_name_and_refuses_an_unknown_one() -> None:
    engine = FakeEngine()
    await engine.start()
    try:
        service = ModelInfoService(load_config().engine, engine)
        listed = await service.models()
        assert len(listed) == 1
        info, status = listed[0]
        assert status.is_default
        assert status.name == info.name
        default_info, default_status = await service.model_info()
        assert (default_info.name, default_status) == (info.name, status)
        assert (await service.model_info(info.name))[1] == status
        with pytest.raises(BadInputError, match="nope"):
            await service.model_info("nope")
    finally:
        await engine.stop()


@pytest.mark.model
async def test_without_an_engine_the_default_file_is_read_once() -> None:
    service = ModelInfoService(load_config(model_path=DEFAULT_MODEL_PATH).engine)
    [(info, status)] = await service.models()
    assert info.name == DEFAULT_MODEL_PATH.stem
    assert status.is_default
    assert not status.loaded
    assert status.file_size == DEFAULT_MODEL_PATH.stat().st_size
    assert status.architecture == "llama"
    assert (await service.model_info(info.name)) == (info, status)
    with pytest.raises(BadInputError, match="unknown model"):
        await service.model_info("another")
