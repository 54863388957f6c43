"""Developer entry point: `python -m llamaql.persistence.migrations <alembic command> [options]`.

The database URL comes from LLAMAQL_DATABASE_URL (or the settings default).
"""

from __future__ import annotations

import sys

from alembic.config import CommandLine

from llamaql.config import load_config
from llamaql.persistence.migrations import alembic_config


def main(argv: list[str] | None = None) -> None:
    """Run an Alembic command against this package's scripts and the configured database."""
    cli = CommandLine(prog="python -m llamaql.persistence.migrations")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(load_config().database.database_url), options)


if __name__ == "__main__":
    main(sys.argv[1:])
