"""GraphiQL without the internet: Strawberry's page pointed at vendored copies of its assets.

Strawberry's GraphiQL page loads React, GraphiQL and the explorer plugin from unpkg.com,
each pinned by a sha384 `integrity` attribute. `make install` (scripts/fetch-graphiql.py)
takes the same files from the npm registry, checks them against those hashes and stores
them under `static/graphiql/<package>@<version>/<file>`. When all of them are there, the
app serves them and a copy of the page whose unpkg URLs point at them; otherwise
Strawberry's own page is used unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

CDN = "https://unpkg.com/"
ASSETS_DIR = Path(__file__).parent / "static" / "graphiql"
ASSETS_PATH = "/graphiql-assets"
# Relative to the page (served at /graphql), so a reverse proxy that serves the app under
# a prefix keeps working, as Strawberry's page does for its fetch URL.
LOCAL_PREFIX = ASSETS_PATH.lstrip("/") + "/"

_UNPKG_PATH = re.compile(r"(?P<package>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<file>.+)")


@dataclass(frozen=True)
class Asset:
    """One unpkg file the page references, with the hash the browser will demand."""

    url: str
    package: str
    version: str
    file: str
    integrity: str

    @property
    def local_path(self) -> str:
        """Where the vendored copy lives, relative to the assets directory and URL."""
        return self.url.removeprefix(CDN)

    @property
    def tarball_url(self) -> str:
        """The package's tarball in the npm registry (a scoped name drops its scope)."""
        basename = self.package.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.package}/-/{basename}-{self.version}.tgz"

    def matches(self, body: bytes) -> bool:
        algorithm, _, expected = self.integrity.partition("-")
        digest = hashlib.new(algorithm, body).digest()
        return base64.b64encode(digest).decode() == expected


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[Asset] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src" if tag == "script" else "href")
        if tag not in ("script", "link") or url is None or not url.startswith(CDN):
            return
        match = _UNPKG_PATH.fullmatch(url.removeprefix(CDN))
        integrity = attributes.get("integrity")
        if match is None or not integrity:
            raise ValueError(f"unpkg asset without a pinned version and integrity: {url!r}")
        self.assets.append(Asset(url=url, integrity=integrity, **match.groupdict()))


def find_assets(page: str) -> list[Asset]:
    """The unpkg scripts and stylesheets of an IDE page, in the order it loads them."""
    parser = _AssetParser()
    parser.feed(page)
    parser.close()
    return parser.assets


def rewrite_to_local(page: str, assets: list[Asset]) -> str:
    """The page with each asset's unpkg URL replaced by its local one; the integrity
    attributes stay, since the local files are the same bytes."""
    for asset in assets:
        page = page.replace(f'"{asset.url}"', f'"{LOCAL_PREFIX}{asset.local_path}"')
    return page


@dataclass(frozen=True)
class LocalGraphiQL:
    """The IDE page on vendored assets, and the route that serves them."""

    html: str
    mount: Mount

    @classmethod
    def load(cls, page: str, directory: Path = ASSETS_DIR) -> LocalGraphiQL | None:
        """The local page if every asset of `page` is vendored with the right hash."""
        assets = find_assets(page)
        for asset in assets:
            path = directory / asset.local_path
            if not path.is_file() or not asset.matches(path.read_bytes()):
                logger.info(
                    "GraphiQL loads its assets from unpkg.com: %s is missing or differs "
                    "(run `make install` to fetch them)",
                    path,
                )
                return None
        if not assets:
            return None
        return cls(
            html=rewrite_to_local(page, assets),
            mount=Mount(ASSETS_PATH, StaticFiles(directory=directory), name="graphiql-assets"),
        )
