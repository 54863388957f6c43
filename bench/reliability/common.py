"""What the reliability figures share: checks with bounds, a server that can be killed
or restarted on the same database, its memory, and an audit of the stored replies."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.server import ServerProcess
from llamaql.config import Config

Size = Literal["small", "medium", "full"]
SIZES: tuple[Size, ...] = ("small", "medium", "full")


@dataclass
class Check:
    """One bound a figure must meet. `enforced` is False for a timing bound at the
    smallest size (noise on a shared machine, not a behaviour)."""

    name: str
    value: Any
    bound: str
    ok: bool
    enforced: bool = True

    @property
    def failed(self) -> bool:
        return self.enforced and not self.ok


class FigureSkipped(Exception):
    """A figure cannot run on this machine (it needs something absent); the message
    says what to set."""


@dataclass
class Figure:
    name: str
    params: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the figure could not be measured (counts as failed)
    skipped: str | None = None  # why it did not run here (needs what it lacks)

    def check(self, name: str, value: Any, ok: bool, bound: str, *, enforced: bool = True) -> None:
        self.checks.append(Check(name, value, bound, bool(ok), enforced))

    @property
    def ok(self) -> bool:
        return self.error is None and not any(check.failed for check in self.checks)

    def document(self) -> dict[str, Any]:
        return {
            "figure": self.name,
            "ok": self.ok,
            "params": self.params,
            "values": self.values,
            "checks": [
                {
                    "name": c.name,
                    "value": c.value,
                    "bound": c.bound,
                    "ok": c.ok,
                    "enforced": c.enforced,
                }
                for c in self.checks
            ],
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "skipped": self.skipped,
        }


class Server(ServerProcess):
    """A `llamaql serve` child; `database` reuses another server's file (restart), and
    `kill()` is SIGKILL with no chance to save anything."""

    def __init__(
        self,
        settings: Config,
        env: Mapping[str, str],
        *,
        database: Path | None = None,
    ) -> None:
        super().__init__(settings, extra_env=env, log_level="WARNING")
        if database is not None:
            self.database = database

    @property
    def folder(self) -> Path:
        return self._tmp

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def rss_mb(self) -> float:
        """Resident memory of the server process now, MiB (Linux /proc)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc status")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass(frozen=True)
class ReplyAudit:
    """Stored messages per conversation, read straight from the SQLite file."""

    conversations: int  # conversations with any message
    user_messages: int
    replies: int
    generating: int
    statuses: dict[str, int]
    bad_conversations: int  # not exactly one user message and one reply


def audit_replies(database: Path) -> ReplyAudit:
    """Each conversation of the load figure got one send: a stored exchange is one user
    message (kind 3) and one reply (kind 2); a refused send stored nothing."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT conversation_id, SUM(kind = 3), SUM(kind = 2), SUM(status = 'GENERATING')"
            " FROM messages GROUP BY conversation_id"
        ).fetchall()
        statuses = dict(
            connection.execute(
                "SELECT status, COUNT(*) FROM messages WHERE kind = 2 GROUP BY status"
            ).fetchall()
        )
    return ReplyAudit(
        conversations=len(rows),
        user_messages=sum(r[1] for r in rows),
        replies=sum(r[2] for r in rows),
        generating=sum(r[3] for r in rows),
        statuses={str(k): int(v) for k, v in statuses.items()},
        bad_conversations=sum(1 for r in rows if (r[1], r[2]) != (1, 1)),
    )
