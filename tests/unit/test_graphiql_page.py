"""The GraphiQL page rewrite, on Strawberry's own template."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

from llamaql.web.graphiql import LocalGraphiQL, find_assets, rewrite_to_local

TEMPLATE = get_graphql_ide_html("graphiql")


def test_assets_are_read_from_strawberrys_page() -> None:
    assets = {(a.package, a.version, a.file) for a in find_assets(TEMPLATE)}
    assert ("react", "18.2.0", "umd/react.production.min.js") in assets
    assert ("@graphiql/plugin-explorer", "1.0.2", "dist/style.css") in assets
    assert len(assets) == 7
    explorer = next(a for a in find_assets(TEMPLATE) if a.package == "@graphiql/plugin-explorer")
    assert explorer.tarball_url == (
        "https://registry.npmjs.org/@graphiql/plugin-explorer/-/plugin-explorer-1.0.2.tgz"
    )


def test_rewrite_points_every_asset_at_the_local_copy_and_keeps_integrity() -> None:
    assets = find_assets(TEMPLATE)
    page = rewrite_to_local(TEMPLATE, assets)
    assert "unpkg.com" not in page
    assert 'src="graphiql-assets/react@18.2.0/umd/react.production.min.js"' in page
    assert 'href="graphiql-assets/@graphiql/plugin-explorer@1.0.2/dist/style.css"' in page
    for asset in assets:
        assert f'integrity="{asset.integrity}"' in page
    # Only the URLs change: the page is otherwise Strawberry's.
    assert page.replace("graphiql-assets/", "https://unpkg.com/") == TEMPLATE


def vendor(directory: Path, *, corrupt: str | None = None) -> None:
    """Fake vendored files whose hashes a test page pins."""
    for asset in find_assets(TEMPLATE):
        path = directory / asset.local_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"corrupt" if asset.file == corrupt else asset.file.encode())


def pinned_to_fakes(page: str) -> str:
    for asset in find_assets(page):
        digest = base64.b64encode(hashlib.sha384(asset.file.encode()).digest()).decode()
        page = page.replace(asset.integrity, f"sha384-{digest}")
    return page


def test_local_page_needs_every_asset_with_the_right_hash(tmp_path: Path) -> None:
    page = pinned_to_fakes(TEMPLATE)
    assert LocalGraphiQL.load(page, tmp_path) is None
    vendor(tmp_path, corrupt="graphiql.min.js")
    assert LocalGraphiQL.load(page, tmp_path) is None
    vendor(tmp_path)
    local = LocalGraphiQL.load(page, tmp_path)
    assert local is not None
    assert "unpkg.com" not in local.html
    assert local.mount.path == "/graphiql-assets"
