"""`Config`: every component's settings, read once from the environment and `.env`.

Every variable is `LLAMAQL_*`; the Rust proof of concept's `MODEL_FILE_NAME`,
`CONTEXT_SIZE` and `DATABASE_URL` are accepted as fallbacks. Each component gets its own
slice (`config.engine`, `config.auth`, ...); only the composition root sees the whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import ValidationError

from llamaql.config.api import ApiConfig
from llamaql.config.auth import AuthConfig
from llamaql.config.base import EnvConfig
from llamaql.config.chat import ChatConfig
from llamaql.config.database import DatabaseConfig
from llamaql.config.display import SECRET_FIELDS, describe_error, redact_url
from llamaql.config.engine import EngineConfig
from llamaql.config.pulls import PullConfig
from llamaql.config.remote import RemoteEngineConfig
from llamaql.config.replicas import ReplicaConfig
from llamaql.config.server import ServerConfig


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable and the value."""


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the server can be told (see the README's settings table), one frozen
    component per field. Field order is the order variables are validated and reported."""

    server: ServerConfig
    api: ApiConfig
    database: DatabaseConfig
    engine: EngineConfig
    remote: RemoteEngineConfig
    chat: ChatConfig
    auth: AuthConfig
    replicas: ReplicaConfig
    pulls: PullConfig

    @property
    def live_replies_per_user(self) -> int:
        """LLAMAQL_MAX_LIVE_REPLIES_PER_USER (default 4): replies outlive their streams,
        so this, not the sockets a user keeps open, bounds one user's share."""
        return self.chat.max_live_replies_per_user

    def flat_values(self) -> dict[str, Any]:
        """Every setting by its field name (each name is one component's), for
        `load_config(**{**config.flat_values(), **changes})`."""
        values: dict[str, Any] = {}
        for name in COMPONENTS:
            values.update(dict(getattr(self, name)))
        return values


# Component name -> its class, in the order of Config's fields.
COMPONENTS: Mapping[str, type[EnvConfig]] = get_type_hints(Config)


def _rules(config: Config) -> tuple[Callable[[], None], ...]:
    """Rules across variables, checked in this order once every variable is valid; the
    first broken one is the error (auth's key source before the replicas' heartbeat)."""
    return (config.auth.check_key_source, config.replicas.check_dead_after)


def _owner(name: str) -> str:
    for component, cls in COMPONENTS.items():
        if name in cls.model_fields:
            return component
    raise TypeError(f"no setting is named {name!r}")


def load_config(**overrides: Any) -> Config:
    """Read every component; a value given here wins over the environment. A bad value
    raises ConfigError naming the variable and value (never a secret, and a URL without
    its password); all bad values are named at once, then the first broken rule.

    Options of pydantic-settings (`_env_file=None`) apply to every component."""
    given: dict[str, dict[str, Any]] = {name: {} for name in COMPONENTS}
    shared = {key: value for key, value in overrides.items() if key.startswith("_")}
    for key, value in overrides.items():
        if not key.startswith("_"):
            given[_owner(key)][key] = value
    parts: dict[str, EnvConfig] = {}
    problems: list[str] = []
    for name, cls in COMPONENTS.items():
        try:
            parts[name] = cls(**shared, **given[name])
        except ValidationError as exc:
            problems += [describe_error(error, cls.model_fields) for error in exc.errors()]
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    config = Config(**parts)  # type: ignore[arg-type]  # each part is its field's class
    for rule in _rules(config):
        try:
            rule()
        except ValueError as exc:
            raise ConfigError(f"invalid settings: {exc}") from None
    return config


def config_summary(config: Config) -> Mapping[str, object]:
    """What the server may log at start-up: secrets masked, URLs without passwords."""
    summary: dict[str, object] = {}
    for name in COMPONENTS:
        summary.update(getattr(config, name).model_dump())
    summary["database_url"] = redact_url(config.database.database_url)
    return {k: ("<hidden>" if k in SECRET_FIELDS and v else v) for k, v in summary.items()}
