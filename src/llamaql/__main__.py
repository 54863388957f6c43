"""`python -m llamaql` runs the CLI."""

from __future__ import annotations

import sys

from llamaql.cli import main

sys.exit(main())
