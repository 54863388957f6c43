"""The config by component: each variable read into its own component, from the
environment or `.env`, and the rules across variables checked in the order of one list."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamaql.config import DEFAULT_MODEL_DIR, ConfigError, load_config


def test_env_file_and_the_old_names_fill_their_components(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (
        "LLAMAQL_PORT",
        "LLAMAQL_DATABASE_URL",
        "LLAMAQL_CONTEXT_SIZE",
        "LLAMAQL_MODEL_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        "LLAMAQL_PORT=9001\nDATABASE_URL=sqlite+aiosqlite:///./other.db\nCONTEXT_SIZE=1024\n"
    )
    monkeypatch.setenv("MODEL_FILE_NAME", "tiny.gguf")
    config = load_config()
    assert config.server.port == 9001
    assert config.database.database_url == "sqlite+aiosqlite:///./other.db"
    assert config.engine.context_size == 1024
    assert config.engine.model_path == DEFAULT_MODEL_DIR / "tiny.gguf"
    assert load_config(_env_file=None).server.port == 8000


def test_bad_values_of_several_components_are_named_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_env_file=None, port=0, parallel=0, heartbeat_seconds=0)
    message = str(error.value)
    for variable in ("LLAMAQL_PORT=0", "LLAMAQL_PARALLEL=0", "LLAMAQL_HEARTBEAT_SECONDS=0"):
        assert variable in message


def test_the_rules_run_in_their_listed_order_and_only_on_valid_values() -> None:
    broken_both = {"auth": "jwt", "heartbeat_seconds": 10, "replica_dead_after_seconds": 15}
    with pytest.raises(ConfigError, match=r"^invalid settings: LLAMAQL_AUTH=jwt needs") as error:
        load_config(_env_file=None, **broken_both)
    assert "HEARTBEAT" not in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config(_env_file=None, port=0, **broken_both)
    assert "needs exactly one" not in str(error.value)
    assert "LLAMAQL_PORT=0" in str(error.value)


def test_a_value_given_in_code_must_name_a_setting() -> None:
    with pytest.raises(TypeError, match="no setting is named 'parralel'"):
        load_config(_env_file=None, parralel=2)


def test_the_per_user_reply_limit_is_the_chat_components() -> None:
    config = load_config(_env_file=None, parallel=6)
    assert (config.engine.parallel, config.chat.max_live_replies_per_user) == (6, 4)
    assert config.live_replies_per_user == 4
    assert config.flat_values()["parallel"] == 6
