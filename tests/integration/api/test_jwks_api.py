"""LLAMAQL_AUTH=jwt with an identity provider's keys: RS256/ES256 tokens checked against a
JWKS served by a small HTTP server on 127.0.0.1 (no other network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.testclient import TestClient
from tests.integration.api.conftest import ALICE, AppFactory
from tests.integration.chat.live import free_port

from llamaql.auth.bearer import JwtAuthenticator

COUNT = "{ conversations { totalCount } }"


class SigningKey:
    """A private key, its public JWK (with a kid), and tokens signed with it."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.kid = uuid.uuid4().hex
        if algorithm == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": algorithm}

    def token(self, sub: str = ALICE, *, kid: str | None = None) -> str:
        claims = {"sub": sub, "exp": int(time.time()) + 300}
        return jwt.encode(claims, self.private, self.algorithm, headers={"kid": kid or self.kid})

    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


class JwksServer:
    """Serves {"keys": [...]} at /jwks.json and counts the fetches."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": [key.jwk for key in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey("RS256")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey("ES256")


@pytest.fixture
def jwks(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer(rsa_key, ec_key) as server:
        yield server


def _post(client: TestClient, token: str) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": COUNT}, headers={"Authorization": f"Bearer {token}"}
    )
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
def test_tokens_signed_with_the_providers_keys_are_accepted(
    make_app: AppFactory, jwks: JwksServer, key_name: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    with TestClient(make_app(auth="jwt", jwt_jwks_url=jwks.url)) as client:
        assert _post(client, key.token()) == {"data": {"conversations": {"totalCount": 0}}}
        assert _post(client, key.token())["data"] is not None
    assert jwks.fetches == 1  # the key set is cached


def test_a_token_signed_with_the_public_key_as_an_hmac_secret_is_refused(
    make_app: AppFactory, jwks: JwksServer, rsa_key: SigningKey
) -> None:
    # The classic algorithm confusion: HS256 keyed with the provider's public key (which
    # anyone can fetch). Built by hand: PyJWT itself refuses to sign it.
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signed = (
        part({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid})
        + "."
        + part({"sub": ALICE, "exp": int(time.time()) + 300})
    )
    mac = hmac.new(rsa_key.public_pem(), signed.encode(), hashlib.sha256).digest()
    forged = signed + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with TestClient(make_app(auth="jwt", jwt_jwks_url=jwks.url)) as client:
        body = _post(client, forged)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_unknown_kid_refetches_the_key_set() -> None:
    old, new = SigningKey("ES256"), SigningKey("ES256")
    with JwksServer(old) as server:
        authenticator = JwtAuthenticator(jwks_url=server.url, jwks_cooldown_s=0)
        assert (await authenticator.from_params({"Authorization": f"Bearer {old.token()}"})).user_id
        server.keys = [new]  # the provider rotated its key
        claim = await authenticator.from_params({"Authorization": f"Bearer {new.token()}"})
    assert str(claim.user_id) == ALICE
    assert server.fetches == 2


async def test_forged_kids_do_not_hammer_the_provider(ec_key: SigningKey) -> None:
    with JwksServer(ec_key) as server:
        authenticator = JwtAuthenticator(jwks_url=server.url)  # default cooldown
        headers = {"authorization": f"Bearer {ec_key.token()}"}
        assert (await authenticator.from_headers(headers)).user_id is not None
        for _ in range(20):
            forged = ec_key.token(kid=uuid.uuid4().hex)
            claim = await authenticator.from_headers({"authorization": f"Bearer {forged}"})
            assert claim.user_id is None
    assert server.fetches == 1


async def test_an_unreachable_provider_is_unauthenticated_and_logged(
    ec_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks.json"
    authenticator = JwtAuthenticator(jwks_url=url)
    with caplog.at_level(logging.WARNING, logger="llamaql.auth.bearer"):
        claim = await authenticator.from_headers({"authorization": f"Bearer {ec_key.token()}"})
    assert claim.user_id is None
    assert "unavailable" in str(claim.error)
    assert any("identity provider keys unavailable" in r.message for r in caplog.records)
