"""docs/nginx/llamaql.conf, rendered with test ports and files, run by a real nginx (its
own prefix, pid and logs in a temporary folder) in front of real `llamaql serve` processes
with the default model: one on SQLite per identity mode, and two replicas on one fresh
PostgreSQL database when LLAMAQL_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.chat.live import (
    REPO_ROOT,
    Server,
    free_port,
    require_model,
    stopped_cleanly,
)
from tests.integration.postgres import POSTGRES_ENV, create_database, database_url, drop_database

NGINX_CONF = REPO_ROOT / "docs" / "nginx" / "llamaql.conf"
INSTALL_TIMEOUT_S = 600
START_TIMEOUT_S = 30.0
# A page on this origin may open sockets besides the proxy's own (LLAMAQL_ALLOWED_ORIGINS).
LISTED_ORIGIN = "https://chat.example"

# Basic-auth users of the proxy and the llamaql ids it maps them to. carol can log in
# but has no id: the proxy must not let her be anyone.
USERS = {
    "alice": "0b5f2c1e-3d4a-4e5f-8a9b-1c2d3e4f5a6b",
    "bob": "9e8d7c6b-5a49-4382-b716-0f1e2d3c4b5a",
}
UNMAPPED = "carol"
JWT_SECRET = "deploy-test-secret-of-at-least-32-bytes"
# docs/deployment.md: for LLAMAQL_AUTH=jwt, remove the auth_basic lines and the X-User-ID
# line from the config (basic auth would take the Authorization header).
JWT_REMOVED_LINES = ("auth_basic ", "auth_basic_user_file ", "proxy_set_header X-User-ID ")


@dataclass(frozen=True)
class Proxy:
    """The running nginx: where it listens, how to trust it, how to log in."""

    port: int
    cafile: Path
    passwords: dict[str, str]
    access_log: Path  # lines: upstream address, method, URI, status

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"{self.origin}/graphql"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/graphql"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))

    def basic(self, user: str) -> str:
        token = base64.b64encode(f"{user}:{self.passwords[user]}".encode()).decode()
        return f"Basic {token}"


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def _install_nginx() -> str:
    """Debian's nginx, installed when missing and we may (root with apt-get); the
    reason why not otherwise. Containers' policy-rc.d keeps the package's own service
    from starting; this test never uses it either way."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "nginx is not installed (apt-get install nginx), and this is not root with apt"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "nginx"]
    for attempt in ([], ["apt-get", "update"]):
        if attempt:
            subprocess.run(attempt, env=env, capture_output=True, timeout=INSTALL_TIMEOUT_S)
        done = subprocess.run(
            install, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
        )
        if done.returncode == 0:
            return ""
    return f"nginx is not installed and apt-get could not install it: {done.stderr[-500:]}"


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    binary = _nginx_binary()
    if binary is None:
        reason = _install_nginx()
        binary = _nginx_binary()
        if binary is None:
            pytest.skip(reason or "nginx was installed but is not on PATH")
    return binary


def _serve(folder: Path, env: dict[str, str]) -> Server:
    """`llamaql serve` on its default host (loopback: only the proxy reaches it)."""
    require_model()
    base = {
        "LLAMAQL_CONTEXT_SIZE": "512",
        "LLAMAQL_PARALLEL": "1",
        "LLAMAQL_AUTO_TITLE": "false",
        "LLAMAQL_ALLOWED_ORIGINS": LISTED_ORIGIN,
    }
    database = folder / "llamaql.db"
    return Server(database=database, log=folder / "server.log", env={**base, **env}).start()


@pytest.fixture(scope="module")
def llamaql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """llamaql with LLAMAQL_AUTH=header (the default)."""
    server = _serve(tmp_path_factory.mktemp("deploy-llamaql"), {})
    yield server
    stopped_cleanly(server)


@pytest.fixture(scope="module")
def jwt_llamaql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """llamaql with LLAMAQL_AUTH=jwt and an HS256 secret."""
    env = {"LLAMAQL_AUTH": "jwt", "LLAMAQL_JWT_SECRET": JWT_SECRET}
    server = _serve(tmp_path_factory.mktemp("deploy-llamaql-jwt"), env)
    yield server
    stopped_cleanly(server)


def _ssha(password: str) -> str:
    """An htpasswd line's {SSHA} hash, which nginx reads (no crypt module needed)."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def render(config: str, replacements: dict[str, str]) -> str:
    """The documented config with its deployment-specific values replaced; each must
    occur exactly once, so a change to the file cannot silently escape the test."""
    for old, new in replacements.items():
        assert config.count(old) == 1, f"{old!r} should occur once in {NGINX_CONF}"
        config = config.replace(old, new)
    return config


def _main_conf(folder: Path) -> str:
    """nginx.conf around the documented file: everything nginx writes stays in `folder`."""
    # As root, nginx's workers would run as nobody and could not read the 0700 tmp folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\ndaemon off;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
        "http {\n    log_format upstreams '$upstream_addr $request_method $request_uri"
        " $status';\n"
        f"    access_log {folder / 'access.log'} upstreams;\n{temp}\n"
        f"    include {folder / 'llamaql.conf'};\n}}\n"
    )


def _wait_listening(process: subprocess.Popen[bytes], port: int, error_log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited ({process.returncode}):\n{_tail(error_log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nginx not listening after {START_TIMEOUT_S}s:\n{_tail(error_log)}")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def jwt_variant(config: str) -> str:
    """The config as the deployment page says to change it for LLAMAQL_AUTH=jwt."""
    lines = config.splitlines(keepends=True)
    kept = [line for line in lines if not line.strip().startswith(JWT_REMOVED_LINES)]
    assert len(lines) - len(kept) == len(JWT_REMOVED_LINES), "the JWT edits no longer apply"
    return "".join(kept)


@contextlib.contextmanager
def _run_proxy(
    binary: str, upstreams: list[Server], folder: Path, edit: Callable[[str], str]
) -> Iterator[Proxy]:
    """nginx with the documented config (after `edit`) in front of `upstreams`."""
    passwords = {name: secrets.token_urlsafe(12) for name in [*USERS, UNMAPPED]}
    (folder / "htpasswd").write_text(
        "".join(f"{name}:{_ssha(password)}\n" for name, password in passwords.items())
    )
    (folder / "users.map").write_text("".join(f"{n} {uid};\n" for n, uid in USERS.items()))
    cert, key = _self_signed(folder)
    port = free_port()
    rendered = render(
        NGINX_CONF.read_text(),
        {
            "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
            "server 127.0.0.1:8000;": "\n    ".join(
                f"server 127.0.0.1:{upstream.port};" for upstream in upstreams
            ),
            "/etc/ssl/certs/chat.example.com.pem": str(cert),
            "/etc/ssl/private/chat.example.com.key": str(key),
            "/etc/nginx/llamaql.htpasswd": str(folder / "htpasswd"),
            "/etc/nginx/llamaql-users.map": str(folder / "users.map"),
        },
    )
    (folder / "llamaql.conf").write_text(edit(rendered))
    (folder / "nginx.conf").write_text(_main_conf(folder))
    error_log = folder / "error.log"
    command = [binary, "-p", f"{folder}/", "-c", str(folder / "nginx.conf")]
    command += ["-e", str(error_log)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(process, port, error_log)
        yield Proxy(port=port, cafile=cert, passwords=passwords, access_log=folder / "access.log")
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish open connections, then exit
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def proxy(
    nginx_binary: str, llamaql: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """The config as shipped (LLAMAQL_AUTH=header)."""
    folder = tmp_path_factory.mktemp("deploy-nginx")
    with _run_proxy(nginx_binary, [llamaql], folder, lambda config: config) as running:
        yield running


@pytest.fixture(scope="module")
def jwt_proxy(
    nginx_binary: str, jwt_llamaql: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """The config with the deployment page's edits for LLAMAQL_AUTH=jwt."""
    folder = tmp_path_factory.mktemp("deploy-nginx-jwt")
    with _run_proxy(nginx_binary, [jwt_llamaql], folder, jwt_variant) as running:
        yield running


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this module's replicas (they migrate it)."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"set {POSTGRES_ENV} to run llamaql replicas on PostgreSQL behind nginx")
    name = asyncio.run(create_database("llamaql_deploy"))
    try:
        yield database_url(name)
    finally:
        asyncio.run(drop_database(name))


@pytest.fixture(scope="module")
def replicas(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Two llamaql replicas on one PostgreSQL, as the deployment page sets them up."""
    servers: list[Server] = []
    try:
        for n in (1, 2):
            env = {"LLAMAQL_DATABASE_URL": pg_url, "LLAMAQL_REPLICA_ID": f"llamaql-{n}"}
            servers.append(_serve(tmp_path_factory.mktemp(f"deploy-replica-{n}"), env))
        yield servers
    finally:
        for server in servers:
            stopped_cleanly(server)


@pytest.fixture(scope="module")
def replicas_proxy(
    nginx_binary: str, replicas: list[Server], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """The config as shipped, its upstream listing both replicas."""
    folder = tmp_path_factory.mktemp("deploy-nginx-replicas")
    with _run_proxy(nginx_binary, replicas, folder, lambda config: config) as running:
        yield running
