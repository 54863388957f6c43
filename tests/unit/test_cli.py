"""The llamaql command: exit codes and messages a person sees."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llamaql import cli, logging_setup
from llamaql.api.schema import build_schema
from llamaql.config import ApiConfig, ServerConfig


@pytest.fixture(autouse=True)
def _quiet_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # configure_logging(force=True) would replace pytest's own log handlers.
    monkeypatch.setattr(logging_setup, "configure_logging", lambda level="INFO": None)


def test_export_schema_prints_the_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export-schema"]) == 0
    assert capsys.readouterr().out == build_schema(ApiConfig()).as_str() + "\n"


def test_bad_setting_exits_2_naming_variable_and_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLAMAQL_PORT", "70000")
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve"])
    assert exited.value.code == 2
    assert "LLAMAQL_PORT='70000'" in capsys.readouterr().err


def test_missing_model_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("LLAMAQL_MODEL_PATH", str(tmp_path / "absent.gguf"))
    assert cli.main(["serve"]) == cli.EXIT_MODEL_MISSING
    err = capsys.readouterr().err
    assert "absent.gguf" in err
    assert "make model" in err
    assert "LLAMAQL_MODEL_PATH" in err


def test_migrate_creates_the_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    monkeypatch.setenv("LLAMAQL_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    assert cli.main(["migrate"]) == 0
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
    assert {"conversations", "messages", "alembic_version"} <= tables


def test_serve_times_request_headers_with_uvicorns_own_choice_of_parser() -> None:
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    protocol = cli.uvicorn_options(ServerConfig(header_timeout_seconds=2.5))["http"]
    assert issubclass(protocol, AutoHTTPProtocol)  # httptools when installed, else h11
    assert protocol.header_timeout_s == 2.5
