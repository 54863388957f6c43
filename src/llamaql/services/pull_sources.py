"""What a pull request names, checked before anything is fetched: the URL (http, https
or hf://owner/repo/file.gguf), the model's name and the expected SHA-256."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from llamaql.ports.errors import BadInputError
from llamaql.ports.model_files import PullSource
from llamaql.ports.model_names import is_model_name, model_name

HF_PREFIX = "hf://"
HF_DOWNLOAD = "https://huggingface.co/{repo}/resolve/main/{file}"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
MAX_URL_CHARS = 2048


def pull_source(
    url: str, *, name: str | None = None, sha256: str | None = None, replace: bool = False
) -> PullSource:
    """The checked request; BadInputError naming the argument that is wrong."""
    resolved = resolve_url(url)
    chosen = name if name is not None else default_name(resolved)
    if not is_model_name(chosen):
        raise BadInputError(
            f"name {chosen!r} is not a model name: letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 128 characters"
        )
    return PullSource(resolved, chosen, _checked_sha256(sha256), replace)


def resolve_url(url: str) -> str:
    """An http(s) URL as given, or hf://owner/repo/path/file.gguf as Hugging Face's
    download URL for it (the main revision)."""
    if len(url) > MAX_URL_CHARS:
        raise BadInputError(f"url is longer than {MAX_URL_CHARS} characters")
    if url.startswith(HF_PREFIX):
        parts = url[len(HF_PREFIX) :].split("/")
        if len(parts) < 3 or not all(parts) or any(p in (".", "..") for p in parts):
            raise BadInputError(f"url {url!r}: write hf://owner/repo/file.gguf")
        repo, file = "/".join(parts[:2]), "/".join(parts[2:])
        return HF_DOWNLOAD.format(repo=quote(repo), file=quote(file))
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise BadInputError(
            f"url {url!r}: only http://, https:// and hf://owner/repo/file.gguf are pulled"
        )
    return url


def default_name(url: str) -> str:
    """The model name of the URL's file (`.../SmolLM2.Q4_1.gguf` -> `SmolLM2.Q4_1`)."""
    file = Path(PurePosixPath(unquote(urlsplit(url).path)).name)
    name = model_name(file)
    # A split model's first part names the model without its -00001-of-0000n, but one
    # part alone is not a model: refused here like any other file that names nothing.
    if name is None or name != file.stem:
        raise BadInputError(
            f"cannot name the model after {file.name!r} (not a single .gguf file with a "
            "valid name): give a name"
        )
    return name


def _checked_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    if _SHA256.fullmatch(sha256) is None:
        raise BadInputError(f"sha256 {sha256!r} is not 64 hexadecimal digits")
    return sha256.lower()
