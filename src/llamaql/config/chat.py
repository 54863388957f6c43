"""Settings of the chat use case: the default system prompt, model-written titles, how
often a streaming reply is saved and how long a failed save is retried, the longest
message, and how many replies one user may have live."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llamaql.config.base import EnvConfig

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer in plain text, without Markdown formatting."
)


class ChatConfig(EnvConfig):
    """`LLAMAQL_SYSTEM_PROMPT`, `LLAMAQL_AUTO_TITLE`, `LLAMAQL_CHECKPOINT_SECONDS`,
    `LLAMAQL_SAVE_RETRY_SECONDS`, `LLAMAQL_MAX_MESSAGE_CHARS` and
    `LLAMAQL_MAX_LIVE_REPLIES_PER_USER`."""

    system_prompt: str = Field(
        DEFAULT_SYSTEM_PROMPT, validation_alias=AliasChoices("LLAMAQL_SYSTEM_PROMPT")
    )
    auto_title: bool = Field(
        True,
        validation_alias=AliasChoices("LLAMAQL_AUTO_TITLE"),
        description="After an untitled conversation's first reply, the model writes its "
        "title (in the background, never ahead of a waiting reply)",
    )
    checkpoint_seconds: float = Field(
        2.0,
        ge=0.0,
        le=3600.0,
        validation_alias=AliasChoices("LLAMAQL_CHECKPOINT_SECONDS"),
        description="While a reply streams, its text so far is saved this often, so a "
        "crash keeps most of it; 0 = only at the end",
    )
    save_retry_seconds: float = Field(
        300.0,
        ge=0,
        le=86400.0,
        validation_alias=AliasChoices("LLAMAQL_SAVE_RETRY_SECONDS"),
        description="How long a finished reply whose save failed (database unreachable) "
        "is kept in memory and its save retried",
    )
    max_message_chars: int = Field(
        32000,
        ge=1,
        validation_alias=AliasChoices("LLAMAQL_MAX_MESSAGE_CHARS"),
        description="Longest text accepted by sendMessage",
    )
    max_live_replies_per_user: int = Field(
        4,
        ge=1,
        le=10000,
        validation_alias=AliasChoices("LLAMAQL_MAX_LIVE_REPLIES_PER_USER"),
        description="Replies one user may have generating or queued at once, across sockets "
        "and replicas, whether or not a stream still watches them (one more is QUEUE_FULL, "
        "nothing written)",
    )
