"""A socket's credential expiry: which credential's expiry counts, the timer that closes
the socket, and the check that refuses an operation once the expiry has passed."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt

from llamaql.auth import Claim, connection_expiry
from llamaql.auth.bearer import LEEWAY_S, JwtAuthenticator
from llamaql.auth.header import HeaderAuthenticator
from llamaql.web.expiry import CLOSE_EXPIRED, EXPIRED_REASON, CredentialExpiry

USER = uuid.UUID("6f1c0c0e-4a53-4a7e-9a4e-2b1f3f0c8d11")
SECRET = "unit-secret-of-at-least-thirty-two-bytes"


class Closes:
    """A socket's close, recorded; `closed` is set when it is called."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.closed = asyncio.Event()

    async def __call__(self, code: int, reason: str) -> None:
        self.calls.append((code, reason))
        self.closed.set()


def test_the_earliest_presented_credential_counts() -> None:
    late, early = Claim(USER, expires_at=200.0), Claim(USER, expires_at=100.0)
    absent = Claim.missing("none")
    assert connection_expiry(late, early) == 100.0
    assert connection_expiry(absent, late) == 200.0
    assert connection_expiry(Claim(USER), absent) is None  # X-User-ID never expires
    # A credential that was not presented does not count, whatever it says.
    assert connection_expiry(Claim(None, presented=False, expires_at=1.0), late) == 200.0


async def test_a_bearer_token_expires_at_exp_plus_the_leeway() -> None:
    exp = int(time.time()) + 60
    bearer = jwt.encode({"sub": str(USER), "exp": exp}, SECRET, "HS256")
    verifier = JwtAuthenticator(secret=SECRET)
    claim = await verifier.from_headers({"authorization": f"Bearer {bearer}"})
    assert (claim.user_id, claim.expires_at) == (USER, exp + LEEWAY_S)
    strict = await JwtAuthenticator(secret=SECRET, leeway_s=0).from_params(
        {"Authorization": f"Bearer {bearer}"}
    )
    assert strict.expires_at == exp
    header = await HeaderAuthenticator().from_headers({"x-user-id": str(USER)})
    assert header.expires_at is None


async def test_the_timer_closes_the_socket_with_4403_at_expiry() -> None:
    closes = Closes()
    expiry = CredentialExpiry(closes)
    expiry.start(time.time() + 0.05)
    assert not expiry.expired()
    async with asyncio.timeout(10):
        await closes.closed.wait()
    assert closes.calls == [(CLOSE_EXPIRED, EXPIRED_REASON)]
    assert expiry.expired()


async def test_past_expiry_an_operation_is_refused_before_the_timer_runs() -> None:
    now = [1000.0]
    closes = Closes()
    expiry = CredentialExpiry(closes, clock=lambda: now[0])
    expiry.start(1010.0)
    assert not expiry.expired()
    now[0] = 1010.0
    assert expiry.expired()
    await expiry.close_expired()
    assert closes.calls == [(CLOSE_EXPIRED, EXPIRED_REASON)]


async def test_no_expiry_or_a_cancelled_timer_never_closes() -> None:
    closes = Closes()
    never = CredentialExpiry(closes)
    never.start(None)
    assert not never.expired()
    cancelled = CredentialExpiry(closes)
    cancelled.start(time.time() - 1)  # already due: it would close at its first step
    cancelled.cancel()
    for _ in range(3):
        await asyncio.sleep(0)  # the steps it would have taken
    assert closes.calls == []
