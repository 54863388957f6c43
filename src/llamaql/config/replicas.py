"""Settings of replicas sharing one PostgreSQL: a name per process and the heartbeat that
tells a live replica's replies from those of one that stopped; and how long the live
feed's events are kept (every replica serves every user's feed)."""

from __future__ import annotations

import os
import secrets
import socket

from pydantic import AliasChoices, Field

from llamaql.config.base import EnvConfig


def default_replica_id() -> str:
    """host-pid-random: unique per process, and a log line's replica is findable."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class ReplicaConfig(EnvConfig):
    """`LLAMAQL_REPLICA_ID`, `LLAMAQL_HEARTBEAT_SECONDS`, `LLAMAQL_REPLICA_DEAD_AFTER_SECONDS`,
    `LLAMAQL_EVENT_RETENTION_SECONDS`."""

    replica_id: str = Field(
        default_factory=default_replica_id,
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
        validation_alias=AliasChoices("LLAMAQL_REPLICA_ID"),
        description="This server's name among replicas sharing one PostgreSQL; default: "
        "host-pid-random, new for every process",
    )
    heartbeat_seconds: float = Field(
        5.0,
        ge=0.1,
        le=300.0,
        validation_alias=AliasChoices("LLAMAQL_HEARTBEAT_SECONDS"),
        description="PostgreSQL: how often a replica marks its generating replies alive "
        "(and looks for replies of replicas that stopped)",
    )
    replica_dead_after_seconds: float = Field(
        30.0,
        ge=0.5,
        le=3600.0,
        validation_alias=AliasChoices("LLAMAQL_REPLICA_DEAD_AFTER_SECONDS"),
        description="PostgreSQL: a generating reply not marked alive for this long is "
        "FAILED/interrupted (its replica stopped); at least twice the heartbeat",
    )

    event_retention_seconds: float = Field(
        300.0,
        ge=1.0,
        le=7 * 24 * 3600.0,
        validation_alias=AliasChoices("LLAMAQL_EVENT_RETENTION_SECONDS"),
        description="How long the `events` feed's events are kept: a client reconnecting "
        "with `since` gets what it missed within this; older, one EventsReset",
    )

    def check_dead_after(self) -> None:
        """Dead-after outlasts a late beat (a rule across variables)."""
        # One late beat (a pause, a slow statement) must not get a live reply marked.
        if self.replica_dead_after_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"LLAMAQL_REPLICA_DEAD_AFTER_SECONDS={self.replica_dead_after_seconds:g} must "
                f"be at least twice LLAMAQL_HEARTBEAT_SECONDS={self.heartbeat_seconds:g}"
            )
