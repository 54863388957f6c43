"""Settings by component: one small pydantic-settings class per part of the server,
composed into one `Config` that the composition root (container.py) slices.

| component | class | read by |
|---|---|---|
| `server` | `ServerConfig` | the CLI (uvicorn) and the Starlette app |
| `api` | `ApiConfig` | the GraphQL schema's limits and the WebSocket handlers |
| `database` | `DatabaseConfig` | the database engine, per-user shares, migrations |
| `engine` | `EngineConfig` | both engines (the model's fields: the in-process one) |
| `remote` | `RemoteEngineConfig` | the remote engine |
| `chat` | `ChatConfig` | the chat and context-usage services |
| `auth` | `AuthConfig` | the authenticator and the WebSocket origin check |
| `replicas` | `ReplicaConfig` | the replica link and heartbeat |
| `pulls` | `PullConfig` | adding and removing models (`llamaql pull`, `pullModel`) |
"""

from llamaql.config.api import ApiConfig
from llamaql.config.auth import AuthConfig
from llamaql.config.chat import DEFAULT_SYSTEM_PROMPT, ChatConfig
from llamaql.config.database import DatabaseConfig
from llamaql.config.engine import (
    DEFAULT_MODEL_DIR,
    DEFAULT_MODEL_FILE,
    MAX_CONTEXT_SIZE,
    EngineConfig,
)
from llamaql.config.loader import COMPONENTS, Config, ConfigError, config_summary, load_config
from llamaql.config.pulls import DEFAULT_MODEL_MAX_BYTES, PullConfig
from llamaql.config.remote import RemoteEngineConfig
from llamaql.config.replicas import ReplicaConfig, default_replica_id
from llamaql.config.server import ServerConfig

__all__ = [
    "COMPONENTS",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_MAX_BYTES",
    "DEFAULT_SYSTEM_PROMPT",
    "MAX_CONTEXT_SIZE",
    "ApiConfig",
    "AuthConfig",
    "ChatConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "EngineConfig",
    "PullConfig",
    "RemoteEngineConfig",
    "ReplicaConfig",
    "ServerConfig",
    "config_summary",
    "default_replica_id",
    "load_config",
]
