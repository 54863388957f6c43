"""The replica settings: a name per process, and a dead-after that outlasts a late beat."""

from __future__ import annotations

import os

import pytest

from llamaql.config import ConfigError, load_config


def test_each_process_gets_its_own_replica_id_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLAMAQL_REPLICA_ID", raising=False)
    first, second = load_config(_env_file=None), load_config(_env_file=None)
    assert first.replicas.replica_id != second.replicas.replica_id  # the random part
    assert f"-{os.getpid()}-" in first.replicas.replica_id


def test_a_replica_id_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMAQL_REPLICA_ID", "api-0")
    assert load_config(_env_file=None).replicas.replica_id == "api-0"


@pytest.mark.parametrize("bad", ["", "two words", "x" * 65, "tab\there"])
def test_a_bad_replica_id_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("LLAMAQL_REPLICA_ID", bad)
    with pytest.raises(ConfigError, match="LLAMAQL_REPLICA_ID"):
        load_config(_env_file=None)


def test_dead_after_must_be_at_least_twice_the_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLAMAQL_HEARTBEAT_SECONDS", "10")
    monkeypatch.setenv("LLAMAQL_REPLICA_DEAD_AFTER_SECONDS", "15")
    with pytest.raises(ConfigError) as refused:
        load_config(_env_file=None)
    assert "LLAMAQL_REPLICA_DEAD_AFTER_SECONDS=15" in str(refused.value)
    assert "LLAMAQL_HEARTBEAT_SECONDS=10" in str(refused.value)
    monkeypatch.setenv("LLAMAQL_REPLICA_DEAD_AFTER_SECONDS", "20")
    assert load_config(_env_file=None).replicas.replica_dead_after_seconds == 20.0
