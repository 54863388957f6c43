"""`llamaql chat`'s arguments; the environment supplies what the flags leave out.

Only argparse and os here: `llamaql serve` builds this parser too and should not pay for
importing the client's HTTP and WebSocket libraries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000/graphql"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_chat_parser(commands: Any) -> None:
    """Add the `chat` subcommand to the `llamaql` parser's subcommands."""
    chat = commands.add_parser(
        "chat",
        help="chat in the terminal with a running server",
        description="A terminal client: streams replies, Ctrl-C stops a reply, "
        "/help lists the commands.",
    )
    chat.add_argument("--url", help=f"the server's GraphQL URL (LLAMAQL_URL, else {DEFAULT_URL})")
    chat.add_argument("--user", help="your user id, a UUID (LLAMAQL_USER_ID)")
    chat.add_argument("--token", help="a bearer token for LLAMAQL_AUTH=jwt servers (LLAMAQL_TOKEN)")
    chat.add_argument(
        "--token-command",
        help="a shell command that prints a fresh bearer token, run for the first token "
        "when --token is not given and whenever the server refuses the one in use, e.g. "
        "when it expired (LLAMAQL_TOKEN_COMMAND)",
    )
    chat.add_argument("--max-tokens", type=int, help="most tokens per reply (server default)")
    chat.add_argument("--temperature", type=float, help="sampling temperature (server default)")


def run_chat(args: argparse.Namespace) -> int:
    """Run the terminal client with the parsed arguments; the process exit code."""
    from llamaql.client.api import ApiError, Identity, IdentityError, websocket_url
    from llamaql.client.resume import TokenSource
    from llamaql.client.terminal import chat

    url = args.url or os.environ.get("LLAMAQL_URL") or DEFAULT_URL
    command = args.token_command or os.environ.get("LLAMAQL_TOKEN_COMMAND")
    tokens = TokenSource(command) if command else None
    try:
        token = args.token or os.environ.get("LLAMAQL_TOKEN")
        if tokens is not None and not token:
            token = tokens.token()
        identity = Identity.of(args.user or os.environ.get("LLAMAQL_USER_ID"), token)
        ws_url = websocket_url(url)
    except (IdentityError, ValueError, ApiError) as exc:
        print(f"llamaql chat: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return EXIT_USAGE
    options = {
        key: value
        for key, value in (("maxTokens", args.max_tokens), ("temperature", args.temperature))
        if value is not None
    }
    try:
        return asyncio.run(
            chat(url=url, ws_url=ws_url, identity=identity, options=options, tokens=tokens)
        )
    except KeyboardInterrupt:
        # Ctrl-C before the prompt was up (while connecting).
        return EXIT_INTERRUPTED
