"""Vendor GraphiQL's browser assets so the IDE works without internet access.

Reads the unpkg URLs and sha384 integrity values from Strawberry's GraphiQL page, takes
each file from its package tarball in the npm registry, checks it against that value and
writes it under src/llamaql/web/static/graphiql/. Idempotent: files that are present with the
right hash are left alone. Any failure is a warning and exit status 0: the server then
serves Strawberry's page, which loads the assets from unpkg.com.

Usage: fetch-graphiql.py [--stamp FILE]   (FILE is touched only when every asset is there)
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

from llamaql.web.graphiql import ASSETS_DIR, Asset, find_assets

TIMEOUT_S = 30


def download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "llamaql-fetch-graphiql"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        body: bytes = response.read()
    return body


def extract(tarball: bytes, file: str) -> bytes:
    """The member `file` of an npm tarball (its top folder is usually, not always, package/)."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.partition("/")[2] == file:
                data = archive.extractfile(member)
                if data is not None:
                    return data.read()
    raise LookupError(f"{file} is not in the tarball")


def fetch(asset: Asset, tarballs: dict[str, bytes]) -> None:
    target = ASSETS_DIR / asset.local_path
    if target.is_file() and asset.matches(target.read_bytes()):
        return
    url = asset.tarball_url
    if url not in tarballs:
        print(f"graphiql: downloading {url}", flush=True)
        tarballs[url] = download(url)
    body = extract(tarballs[url], asset.file)
    if not asset.matches(body):
        raise ValueError(f"{asset.file} from {url} does not match {asset.integrity}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(body)
    partial.replace(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stamp", type=Path, help="touched when every asset is present")
    args = parser.parse_args()
    try:
        assets = find_assets(get_graphql_ide_html("graphiql"))
        if not assets:
            raise LookupError("Strawberry's GraphiQL page references no unpkg.com assets")
        tarballs: dict[str, bytes] = {}
        for asset in assets:
            fetch(asset, tarballs)
    except Exception as exc:  # any failure leaves the CDN page in place; install goes on
        print(
            f"graphiql: WARNING: could not vendor GraphiQL's assets ({type(exc).__name__}: "
            f"{exc}); the GraphiQL page will load them from unpkg.com instead",
            file=sys.stderr,
        )
        return 0
    print(f"graphiql: {len(assets)} assets present in {ASSETS_DIR}")
    if args.stamp is not None:
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
