"""What every component's settings share: where values come from and how they are named.

Each component (server, api, database, engine, remote engine, chat, auth, replicas) is a
small pydantic-settings class. A field names its variable, and the fallbacks the Rust
proof of concept used, with `AliasChoices("LLAMAQL_NAME", ...)`: the first one set wins.
The field's own name is accepted too, for values given in code (`load_config(port=0)`).
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class EnvConfig(BaseSettings):
    """One component's settings: read from the environment and `.env`, then frozen.

    Rules across a component's variables are not validators here: `Config` runs them in
    the order of its list once every variable is valid (see loader.py)."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, frozen=True
    )
