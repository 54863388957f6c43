"""The bundled chat page: served at /, self-contained, and speaking the current schema."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from graphql import parse, validate
from tests.integration.api.conftest import Api

from llamaql.api.schema import build_schema
from llamaql.config import ApiConfig
from llamaql.web.chat_page import STATIC_DIR

PAGE_URL = "http://testserver/"
CONTENT_TYPES = {".js": {"text/javascript", "application/javascript"}, ".css": {"text/css"}}
# Absolute or protocol-relative URLs in HTML, CSS or JavaScript text.
EXTERNAL_URL = re.compile(r"\b(?:https?|wss?|ftp)://|[\"'(=]\s*//[\w.-]")
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "poster", "data"}


class UrlParser(HTMLParser):
    """Every URL-valued attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in URL_ATTRIBUTES and value]


def page_urls(api: Api) -> list[str]:
    parser = UrlParser()
    parser.feed(api.client.get("/").text)
    return parser.urls


# `import ... from "./x.js"` in the page's modules.
MODULE_IMPORT = re.compile(r"""^import [^;]*? from "(\./[\w-]+\.js)";""", re.MULTILINE | re.DOTALL)


def local_assets(api: Api) -> list[str]:
    """The page's own files: what its HTML names, and every module its scripts import."""
    assets = [urljoin(PAGE_URL, url) for url in page_urls(api) if urlsplit(url).scheme != "data"]
    for asset in assets:  # grows while it is walked: imports of imports
        if asset.endswith(".js"):
            for name in MODULE_IMPORT.findall(api.client.get(asset).text):
                imported = urljoin(asset, name)
                if imported not in assets:
                    assets.append(imported)
    return assets


def test_the_page_is_served_at_the_root(api: Api) -> None:
    response = api.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/html"
    assert "<textarea" in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_page_references_no_external_urls(api: Api) -> None:
    urls = page_urls(api)
    assert local_assets(api), urls  # at least its script and stylesheet
    parts = [urlsplit(url) for url in urls]
    assert [p.geturl() for p in parts if p.netloc or p.scheme not in ("", "data")] == []
    for url in [PAGE_URL, *local_assets(api)]:
        text = api.client.get(url).text
        assert EXTERNAL_URL.findall(text) == [], url


def test_every_local_asset_is_served_with_its_type(api: Api) -> None:
    assets = local_assets(api)
    assert {url.rsplit("/", 1)[-1] for url in assets} >= {"chat.js", "api.js", "documents.js"}
    for url in assets:
        response = api.client.get(url)
        assert response.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        assert response.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url


def test_graphiql_still_has_its_page(api: Api) -> None:
    response = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_the_scripts_documents_are_valid_against_the_schema() -> None:
    """Every query, mutation and subscription of the page (documents.js), with its ${...}
    parts filled in, validates against the schema: a renamed field breaks this test, not
    the page."""
    script = (STATIC_DIR / "documents.js").read_text()
    constants = dict(re.findall(r'const ([A-Z_]+) =\s*(\d+|"[^"]*"|`[^`]*`);', script))

    def value(name: str) -> str:
        raw = constants[name]
        text = raw[1:-1] if raw[0] in '"`' else raw
        return re.sub(r"\$\{(\w+)\}", lambda match: value(match.group(1)), text)

    documents = [value(name) for name in constants if re.match(r"[QMS]_", name)]
    assert len(documents) == 17, sorted(constants)
    schema = build_schema(ApiConfig())._schema
    for document in documents:
        assert validate(schema, parse(document)) == [], document
