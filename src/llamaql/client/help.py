"""`llamaql chat`'s words: the /help text, speakers' names, how a command is misused."""

from __future__ import annotations

HELP = """\
Type a message to send it to the current conversation (a new one if there is none).
  /list             your conversations, newest first, numbered
  /new [title]      start a conversation
  /switch N|id      open conversation N of the last /list (or by id)
  /history [N]      the last N messages of this conversation (default 6)
  /rename title     rename this conversation
  /delete [N|id]    delete a conversation (default: this one)
  /regen            a new reply in place of the last one (the old stays a branch)
  /edit text        send text in place of your last message (the old stays a branch)
  /branch prev|next the previous or next version at the latest fork
  /search words     find your messages and titles
  /context [text]   how much of the context sending text now would use (nothing is sent)
  /models           the server's models (* marks this conversation's)
  /model [NAME]     answer this conversation and new ones with NAME (default: the
                    server's default); alone, which models are in use
  /help             this text
  /quit             leave (Ctrl-D does too)
Ctrl-C while a reply streams stops it (its text is kept); again, stops following it;
at the prompt, twice quits. A reply goes on when the connection drops: the client
reconnects and carries on, and /switch to a conversation shows a reply in progress.
Start a message with // to send text that begins with /."""

SPEAKERS = {"USER": "you", "ASSISTANT": "bot", "SYSTEM": "system", "TOOL": "tool"}


class UsageError(Exception):
    """A command used wrongly; its message says how to use it."""
