"""The terminal client's conversation commands and message sending.

`ChatSession.handle(line)` is the whole client minus the keyboard: plain text sends a
message to the current conversation (creating one if there is none), `/command args`
runs a command. Tests drive it with scripted lines and a StringIO console.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from llamaql.client import operations as ops
from llamaql.client.api import ApiError, GraphQLHttp
from llamaql.client.console import Console
from llamaql.client.help import HELP, SPEAKERS, UsageError
from llamaql.client.lookups import LookupCommands
from llamaql.client.models import ModelCommands
from llamaql.client.reply import EventStream, LiveReply, describe_error
from llamaql.client.stream import Subscription

HISTORY_SHOWN = 6
LIST_SIZE = 20
MAX_PAGES = 100


class ChatSession:
    """One user's terminal session against one server."""

    def __init__(
        self,
        *,
        api: GraphQLHttp,
        ws_url: str,
        console: Console,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.api = api
        self.ws_url = ws_url
        self.console = console
        self.options = options or None
        self.conversation_id: str | None = None
        self.live: LiveReply | None = None
        self._listing: list[str] = []
        self.models = ModelCommands(api=api, console=console)
        self.lookups = LookupCommands(api=api, console=console)
        self._commands: dict[str, Callable[[str], Awaitable[None]]] = {
            "help": self._help,
            "list": self._list,
            "new": self._new,
            "switch": self._switch,
            "history": self._history,
            "rename": self._rename,
            "delete": self._delete,
            "regen": self._regen,
            "edit": self._edit,
            "branch": self._branch,
            "search": self.lookups.search,
            "context": self._context,
            "models": lambda _: self.models.show_all(self.conversation_id),
            "model": lambda name: self.models.choose(name, self.conversation_id),
        }

    async def greet(self) -> None:
        """Check the server and the identity before the first prompt (raises ApiError)."""
        model = (await self.api.execute(ops.MODEL))["model"]
        self.console.line(
            f"connected to {self.api.url}: {model['name']} ({model['backend']}, "
            f"{model['contextSize']} tokens of context). /help lists the commands."
        )

    async def handle(self, line: str) -> bool:
        """Run one line of input; False when the user asked to quit."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/") and not line.startswith("//"):
            name, _, argument = line[1:].partition(" ")
            if name in ("quit", "exit"):
                return False
            command = self._commands.get(name)
            if command is None:
                self.console.line(f"unknown command /{name}; /help lists the commands")
                return True
            return await self._run(command(argument.strip()))
        return await self._run(self._send(line.removeprefix("/")))

    def interrupt(self) -> bool:
        """Ctrl-C: cancel the streaming reply; False when none is streaming."""
        if self.live is None:
            return False
        self.live.interrupt()
        return True

    async def _run(self, work: Awaitable[None]) -> bool:
        try:
            await work
        except ApiError as exc:
            self.console.line(describe_error(exc))
        except UsageError as exc:
            self.console.line(str(exc))
        return True

    async def _open_stream(
        self, document: str, field: str, variables: dict[str, Any]
    ) -> EventStream:
        # The identity is read at each opening: a reconnect uses a renewed token.
        subscription = Subscription(self.ws_url, self.api.identity, document, variables, field)
        return await subscription.__aenter__()

    async def _stream(self, document: str, field: str, variables: dict[str, Any]) -> None:
        variables = {**variables, "options": self.options}
        await self._follow(
            LiveReply(api=self.api, console=self.console, open_stream=self._open_stream),
            document,
            field,
            variables,
        )

    async def _follow(
        self, live: LiveReply, document: str, field: str, variables: dict[str, Any]
    ) -> None:
        self.live = live
        try:
            await live.run(document, field, variables)
        finally:
            self.live = None

    async def _reattach(self, reply: dict[str, Any]) -> None:
        """Follow a reply that is under way (sent by another client, or before this one
        lost its connection): its text so far is printed, then the rest as it comes."""
        model = f" ({reply['model']})" if reply.get("model") else ""
        self.console.write(f"{SPEAKERS['ASSISTANT']}{model}> {reply['text']}")
        live = LiveReply(
            api=self.api,
            console=self.console,
            open_stream=self._open_stream,
            reply_id=reply["id"],
            shown=reply["text"],
        )
        variables = {"messageId": reply["id"], "after": len(reply["text"])}
        await self._follow(live, ops.REPLY_STREAM, "replyStream", variables)

    async def _send(self, text: str) -> None:
        if self.conversation_id is None:
            await self._new("")
        variables = {"conversationId": self.conversation_id, "text": text}
        await self._stream(ops.SEND_MESSAGE, "sendMessage", variables)

    async def _help(self, _: str) -> None:
        self.console.line(HELP)

    async def _list(self, _: str) -> None:
        data = await self.api.execute(ops.CONVERSATIONS, first=LIST_SIZE)
        connection = data["conversations"]
        nodes = [edge["node"] for edge in connection["edges"]]
        self._listing = [node["id"] for node in nodes]
        if not nodes:
            self.console.line("no conversations yet: type a message or /new [title]")
            return
        for number, node in enumerate(nodes, start=1):
            mark = "*" if node["id"] == self.conversation_id else " "
            title = node["title"] or "(untitled)"
            self.console.line(f"{mark}{number:3}. {title}  [{node['id'][:8]}]")
        if connection["totalCount"] > len(nodes):
            self.console.line(f"     ... {connection['totalCount'] - len(nodes)} older")

    async def _new(self, title: str) -> None:
        created = (
            await self.api.execute(ops.CREATE, title=title or None, model=self.models.for_new)
        )["createConversation"]
        self.conversation_id = created["id"]
        model = f", model {created['model']}" if created["model"] else ""
        self.console.line(f"[new conversation: {created['title'] or '(untitled)'}{model}]")

    async def _switch(self, argument: str) -> None:
        conversation_id = self._target(argument, usage="/switch N|id")
        title, messages = await self._messages(conversation_id)
        self.conversation_id = conversation_id
        self.console.line(f"[conversation: {title or '(untitled)'}, {len(messages)} messages]")
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "ASSISTANT" and last["status"] == "GENERATING":
            # A reply in progress: shown as it goes on, as if this client had sent it.
            self._show(messages[-HISTORY_SHOWN:-1])
            await self._reattach(last)
            return
        self._show(messages[-HISTORY_SHOWN:])

    async def _history(self, argument: str) -> None:
        if argument and not argument.isdigit():
            raise UsageError("usage: /history [N]")
        _, messages = await self._messages(self._current())
        self._show(messages[-int(argument or HISTORY_SHOWN) :] if argument != "0" else [])

    async def _rename(self, title: str) -> None:
        if not title:
            raise UsageError("usage: /rename title")
        renamed = await self.api.execute(ops.RENAME, id=self._current(), title=title)
        self.console.line(f"[renamed: {renamed['updateConversation']['title']}]")

    async def _delete(self, argument: str) -> None:
        target = self._target(argument, usage="/delete [N|id]") if argument else self._current()
        await self.api.execute(ops.DELETE, id=target)
        if target == self.conversation_id:
            self.conversation_id = None
        self._listing = [entry for entry in self._listing if entry != target]
        self.console.line(f"[deleted {target[:8]}]")

    async def _regen(self, _argument: str) -> None:
        _, messages = await self._messages(self._current())
        if not messages or messages[-1]["role"] != "ASSISTANT":
            raise UsageError("no reply to regenerate: the last message is not the model's")
        await self._stream(ops.REGENERATE, "regenerate", {"messageId": messages[-1]["id"]})

    async def _edit(self, text: str) -> None:
        if not text:
            raise UsageError("usage: /edit text")
        _, messages = await self._messages(self._current())
        mine = [message for message in messages if message["role"] == "USER"]
        if not mine:
            raise UsageError("no message of yours to edit in this conversation")
        variables = {"messageId": mine[-1]["id"], "text": text}
        await self._stream(ops.EDIT_MESSAGE, "editMessage", variables)

    async def _branch(self, argument: str) -> None:
        """Flip the latest fork of the branch (the last reply after /regen, your
        message after /edit) to its previous or next version."""
        if argument not in ("prev", "next"):
            raise UsageError("usage: /branch prev|next")
        conversation_id = self._current()
        _, messages = await self._messages(conversation_id, ops.BRANCH_MESSAGES)
        forks = [message for message in messages if len(message["siblingIds"]) > 1]
        if not forks:
            raise UsageError("no other versions in this conversation yet (/regen or /edit)")
        siblings: list[str] = forks[-1]["siblingIds"]
        position = siblings.index(forks[-1]["id"])
        index = position + (1 if argument == "next" else -1)
        if not 0 <= index < len(siblings):
            raise UsageError(
                f"no {argument} version: this is version {position + 1} of {len(siblings)}"
            )
        await self.api.execute(ops.SELECT_BRANCH, id=siblings[index])
        _, messages = await self._messages(conversation_id)
        self.console.line(f"[version {index + 1} of {len(siblings)}]")
        self._show(messages[-2:])

    async def _context(self, text: str) -> None:
        await self.lookups.context(self._current(), text)

    def _current(self) -> str:
        if self.conversation_id is None:
            raise UsageError("no conversation open: type a message, /new, or /list and /switch N")
        return self.conversation_id

    def _target(self, argument: str, *, usage: str) -> str:
        """A conversation named by its number in the last /list, or by its id."""
        if argument.isdigit():
            number = int(argument)
            if not 1 <= number <= len(self._listing):
                raise UsageError(f"no conversation {number} in the last /list ({usage})")
            return self._listing[number - 1]
        try:
            return str(uuid.UUID(argument))
        except ValueError:
            raise UsageError(f"usage: {usage} (a number from /list, or an id)") from None

    async def _messages(
        self, conversation_id: str, document: str = ops.MESSAGES
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """The conversation's title and current branch, oldest first, every page."""
        title: str | None = None
        messages: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = await self.api.execute(
                document, id=conversation_id, first=ops.PAGE_SIZE, after=after
            )
            conversation = data["conversation"]
            if conversation is None:
                raise ApiError("NOT_FOUND", f"conversation {conversation_id} not found")
            title = conversation["title"]
            page = conversation["messages"]
            messages.extend(edge["node"] for edge in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        return title, messages

    def _show(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            status = "" if message["status"] == "COMPLETE" else f" [{message['status'].lower()}]"
            model = f" ({message['model']})" if message.get("model") else ""
            self.console.line(f"{SPEAKERS[message['role']]}{model}> {message['text']}{status}")
