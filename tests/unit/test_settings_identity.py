"""Identity and limit settings are checked at start-up, and never echo secrets."""

from __future__ import annotations

import pytest

from llamaql.config import ConfigError, config_summary, load_config

SECRET = "s" * 40


@pytest.mark.parametrize(
    "overrides",
    [
        {"auth": "jwt"},
        {"auth": "jwt", "jwt_secret": SECRET, "jwt_jwks_url": "https://id.example/jwks"},
    ],
)
def test_jwt_mode_needs_exactly_one_key_source(overrides: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(**overrides)
    assert "LLAMAQL_AUTH=jwt needs exactly one of LLAMAQL_JWT_SECRET" in str(error.value)
    assert SECRET not in str(error.value)


def test_a_short_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(auth="jwt", jwt_secret="hunter2")
    assert "LLAMAQL_JWT_SECRET=<hidden>: Value error, must be at least 32 bytes" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_jwks_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="LLAMAQL_JWT_JWKS_URL='file:///etc/passwd'"):
        load_config(auth="jwt", jwt_jwks_url="file:///etc/passwd")


def test_allowed_origins_are_comma_separated_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMAQL_ALLOWED_ORIGINS", "https://a.example, http://b.example:8080")
    assert load_config().auth.allowed_origins == ("https://a.example", "http://b.example:8080")
    monkeypatch.setenv("LLAMAQL_ALLOWED_ORIGINS", "https://a.example/chat")
    with pytest.raises(ConfigError, match="is not an origin"):
        load_config()


def test_a_rejected_database_url_is_shown_without_its_password() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(database_url="mysql://app:hunter2@db.example/chat")
    assert "mysql://app:***@db.example/chat" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_the_summary_hides_secrets_and_passwords() -> None:
    config = load_config(
        auth="jwt",
        jwt_secret=SECRET,
        database_url="postgresql+asyncpg://app:hunter2@db.example/chat",
    )
    summary = str(config_summary(config))
    assert SECRET not in summary
    assert "hunter2" not in summary
