"""GraphiQL works offline: the page references only assets the server itself serves."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from strawberry.http.ides import get_graphql_ide_html
from tests.integration.api.conftest import Api

from llamaql.web.graphiql import LocalGraphiQL

pytestmark = pytest.mark.skipif(
    LocalGraphiQL.load(get_graphql_ide_html("graphiql")) is None,
    reason="GraphiQL's assets are not vendored in src/llamaql/web/static/graphiql: run make "
    "install",
)

PAGE_URL = "http://testserver/graphql"
CONTENT_TYPES = {".js": {"text/javascript", "application/javascript"}, ".css": {"text/css"}}


class ResourceParser(HTMLParser):
    """Every script src and link href of a page, with its integrity attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else attributes.get("href")
        if tag in ("script", "link") and url:
            self.resources.append((url, attributes.get("integrity")))


def page_resources(api: Api) -> list[tuple[str, str | None]]:
    response = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "unpkg.com" not in response.text
    parser = ResourceParser()
    parser.feed(response.text)
    return parser.resources


def test_graphiql_page_references_no_external_urls(api: Api) -> None:
    resources = page_resources(api)
    parts = [urlsplit(url) for url, _ in resources]
    external = [p.geturl() for p in parts if p.netloc or p.scheme not in ("", "data")]
    assert external == []
    pinned = [url for url, integrity in resources if integrity]
    # react, react-dom, js-cookie, graphiql js+css, explorer plugin js+css
    assert len(pinned) == 7, resources


def test_every_local_asset_is_served_with_its_type_and_pinned_hash(api: Api) -> None:
    for url, integrity in page_resources(api):
        if urlsplit(url).scheme == "data":
            continue
        response = api.client.get(urljoin(PAGE_URL, url))
        assert response.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        content_type = response.headers["content-type"].split(";")[0]
        assert content_type in CONTENT_TYPES[suffix], (url, content_type)
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert f"sha384-{digest}" == integrity, url
