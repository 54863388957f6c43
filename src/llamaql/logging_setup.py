"""Logging configuration for the server process (called by the CLI, never on import)."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """One stream handler on the root logger; uvicorn's loggers propagate to it."""
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)
    # httpx logs a line per request at INFO; the remote engine makes several per message.
    quiet = logging.getLevelName(level) != logging.DEBUG
    logging.getLogger("httpx").setLevel(logging.WARNING if quiet else logging.NOTSET)
