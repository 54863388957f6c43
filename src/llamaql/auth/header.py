"""LLAMAQL_AUTH=header: X-User-ID, trusted as set by an authenticating proxy."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from llamaql.auth.claims import Claim, find_param, usable_user_id

USER_HEADER = "X-User-ID"
MISSING = f"{USER_HEADER} is missing: send {USER_HEADER}: <uuid>"


def parse_user_value(value: object) -> Claim:
    """A header or payload value as a Claim (absent, malformed, or a user id)."""
    if value is None or value == "":
        return Claim.missing(MISSING)
    if not isinstance(value, str):
        return Claim.refused(f"{USER_HEADER} must be a UUID string, got {value!r}")
    try:
        user_id = uuid.UUID(value.strip())
    except ValueError:
        return Claim.refused(f"{USER_HEADER} must be a UUID, got {value[:64]!r}")
    return usable_user_id(user_id)


class HeaderAuthenticator:
    """Reads X-User-ID from headers, or from the connection_init payload."""

    async def from_headers(self, headers: Mapping[str, str]) -> Claim:
        return parse_user_value(headers.get(USER_HEADER.lower()))

    async def from_params(self, params: Mapping[str, object] | None) -> Claim:
        return parse_user_value(find_param(params, USER_HEADER))
