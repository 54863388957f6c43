"""Identity headers and GraphQL over HTTP for the terminal client.

The identity travels the way the server expects it, as headers on every request and on
the WebSocket upgrade: `X-User-ID` for `LLAMAQL_AUTH=header` servers, `Authorization:
Bearer` for `LLAMAQL_AUTH=jwt` ones. Headers, not the `connection_init` payload, because
a terminal is not a browser and a proxy in front of the server can see and check them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Protocol, Self

import httpx

REQUEST_TIMEOUT_S = 120.0


class ApiError(Exception):
    """A refusal or failure with the contract's code (`NOT_FOUND`, `QUEUE_FULL`...),
    or a client-side code for what never reached GraphQL (`UNREACHABLE`, `HTTP_502`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class IdentityError(ValueError):
    """The identity given to the client cannot be sent (not a UUID, nothing given)."""


@dataclass(frozen=True)
class Identity:
    """Who the client speaks for: a user id, a bearer token, or both."""

    user_id: str | None = None
    token: str | None = None

    @classmethod
    def of(cls, user_id: str | None, token: str | None) -> Identity:
        """Checked identity; a user id must be a UUID (the server's rule, said early)."""
        user_id = (user_id or "").strip() or None
        token = (token or "").strip() or None
        if user_id is None and token is None:
            raise IdentityError(
                "no identity: pass --user <uuid> (or set LLAMAQL_USER_ID), or --token "
                "<jwt> (or LLAMAQL_TOKEN) for a server with LLAMAQL_AUTH=jwt"
            )
        if user_id is not None:
            try:
                uuid.UUID(user_id)
            except ValueError:
                raise IdentityError(f"user id {user_id!r} is not a UUID") from None
        return cls(user_id=user_id, token=token)

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.user_id is not None:
            headers["X-User-ID"] = self.user_id
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def first_error(body: dict[str, Any]) -> ApiError:
    """The first GraphQL error of a response as an ApiError."""
    error = body["errors"][0] if body.get("errors") else {}
    code = str((error.get("extensions") or {}).get("code") or "INTERNAL")
    return ApiError(code, str(error.get("message") or "the server gave no reason"))


def websocket_url(http_url: str) -> str:
    """The same endpoint for the WebSocket (http -> ws, https -> wss)."""
    if http_url.startswith("https://"):
        return "wss://" + http_url.removeprefix("https://")
    if http_url.startswith("http://"):
        return "ws://" + http_url.removeprefix("http://")
    raise ValueError(f"server URL {http_url!r} must start with http:// or https://")


class FreshTokens(Protocol):
    """Where a new bearer token comes from when the server refuses the one in use."""

    async def fresh(self) -> str: ...


class GraphQLHttp:
    """Queries and mutations as POSTs to the server's /graphql, one client kept open.
    With `tokens`, a request refused as UNAUTHENTICATED (an expired token) is sent once
    more with a fresh token, which `identity` then carries for later sockets too."""

    def __init__(self, url: str, identity: Identity, *, tokens: FreshTokens | None = None) -> None:
        self.url = url
        self.identity = identity
        self._tokens = tokens
        self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, headers=identity.headers())

    async def renew_identity(self) -> bool:
        """Take a fresh token from `tokens`; False when there is no way to get one."""
        if self._tokens is None:
            return False
        token = await self._tokens.fresh()
        self.identity = replace(self.identity, token=token)
        self._client.headers["Authorization"] = f"Bearer {token}"
        return True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def execute(self, document: str, **variables: Any) -> dict[str, Any]:
        """The operation's `data`; ApiError with the server's code if it was refused."""
        try:
            return await self._execute_once(document, variables)
        except ApiError as exc:
            if exc.code != "UNAUTHENTICATED" or not await self.renew_identity():
                raise
        return await self._execute_once(document, variables)

    async def _execute_once(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(
                self.url, json={"query": document, "variables": variables}
            )
        except httpx.HTTPError as exc:
            raise ApiError("UNREACHABLE", f"{self.url}: {exc or type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                f"HTTP_{response.status_code}", f"{self.url} did not answer with GraphQL"
            ) from None
        if not isinstance(body, dict):
            raise ApiError(f"HTTP_{response.status_code}", "unexpected response body")
        if body.get("errors") or body.get("data") is None:
            raise first_error(body)
        data: dict[str, Any] = body["data"]
        return data
