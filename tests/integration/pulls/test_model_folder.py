"""The models folder's adapter against a local HTTP server: what a pull downloads, how it
resumes, and what it refuses, always leaving either the checked model or nothing."""

from __future__ import annotations

import hashlib
from itertools import pairwise
from pathlib import Path

import pytest
from tests.integration.pulls.files_server import FileServer

from llamaql.engine.local.downloads import CHUNK_BYTES, DownloadLimits
from llamaql.engine.local.model_folder import ModelFolder
from llamaql.ports.errors import DomainError
from llamaql.ports.model_files import PullSource

MODEL = "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
TINY = "/tiny.gguf"


class Reports:
    """A PullListener that keeps what it was told."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.verified = False

    def downloaded(self, done: int, total: int | None) -> None:
        self.done.append(done)

    def verifying(self) -> None:
        self.verified = True


def folder_at(path: Path, **limits: float) -> ModelFolder:
    options = {"max_bytes": 1024**3, "first_pause_s": 0.01, **limits}
    return ModelFolder(path, DownloadLimits(**options))  # type: ignore[arg-type]


def pull(folder: ModelFolder, url: str, name: str, **fields: object) -> Reports:
    reports = Reports()
    folder.pull(PullSource(url, name, **fields), reports, lambda: False)  # type: ignore[arg-type]
    return reports


def failure(folder: ModelFolder, url: str, name: str, **fields: object) -> DomainError:
    with pytest.raises(DomainError) as failed:
        pull(folder, url, name, **fields)
    return failed.value


def left_in(folder: Path) -> list[str]:
    """Every file in the folder, hidden ones too."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_cut_download_resumes_with_range_and_ends_with_the_right_bytes(
    files: FileServer, models_dir: Path, default_model: bytes
) -> None:
    files.behaviour.files[MODEL] = default_model
    half = len(default_model) // 2
    files.behaviour.cut_at, files.behaviour.cuts = half, 1
    sha256 = hashlib.sha256(default_model).hexdigest()

    reports = pull(folder_at(models_dir), files.file_url(MODEL), "smol", sha256=sha256)

    ranges = [requested for _, requested in files.behaviour.requests]
    assert ranges[0] is None
    resumed_at = int(ranges[1].removeprefix("bytes=").removesuffix("-"))  # type: ignore[union-attr]
    # It asked for the rest from where the cut left it (a chunk may be in flight).
    assert half - CHUNK_BYTES <= resumed_at <= half
    assert len(ranges) == 2
    assert (models_dir / "smol.gguf").read_bytes() == default_model
    assert left_in(models_dir) == ["smol.gguf"]
    assert reports.verified
    assert reports.done[-1] == len(default_model)
    assert all(later > earlier for earlier, later in pairwise(reports.done))


def test_a_server_that_ignores_range_starts_the_file_over(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    files.behaviour.cut_at, files.behaviour.cuts = len(tiny_gguf) // 2, 1
    files.behaviour.ignore_range = True

    reports = pull(folder_at(models_dir), files.file_url(TINY), "tiny")

    assert files.behaviour.requests[1][1] is not None  # it asked for a range...
    assert (models_dir / "tiny.gguf").read_bytes() == tiny_gguf  # ...and took the whole
    # The count went back when the file started over (a resume only ever goes up).
    assert any(later <= earlier for earlier, later in pairwise(reports.done))


def test_a_bad_checksum_leaves_no_file(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    error = failure(folder_at(models_dir), files.file_url(TINY), "tiny", sha256="0" * 64)
    assert error.code == "BAD_USER_INPUT"
    assert "sha256 mismatch" in error.message
    assert left_in(models_dir) == []


def test_a_file_that_is_not_gguf_is_refused_at_its_first_bytes(
    files: FileServer, models_dir: Path
) -> None:
    files.behaviour.files["/page.gguf"] = b"<html>" + b"x" * (3 * CHUNK_BYTES)
    error = failure(folder_at(models_dir), files.file_url("/page.gguf"), "page")
    assert (error.code, "not a GGUF model" in error.message) == ("BAD_USER_INPUT", True)
    assert left_in(models_dir) == []
    assert len(files.behaviour.requests) == 1


def test_a_gguf_with_a_broken_header_is_refused(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf[:30]  # the magic, then the header stops
    error = failure(folder_at(models_dir), files.file_url(TINY), "tiny")
    assert error.code == "BAD_USER_INPUT"
    assert "not a usable GGUF model" in error.message
    assert str(models_dir) not in error.message
    assert left_in(models_dir) == []


def test_a_file_over_the_limit_stops_and_leaves_nothing(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    error = failure(folder_at(models_dir, max_bytes=1024 * 1024), files.file_url(TINY), "tiny")
    assert (error.code, "LLAMAQL_MODEL_MAX_BYTES" in error.message) == ("BAD_USER_INPUT", True)
    assert left_in(models_dir) == []


def test_redirects_are_followed_within_http(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    files.behaviour.redirects = {"/a": "/b", "/b": files.file_url(TINY)}
    pull(folder_at(models_dir), files.file_url("/a"), "tiny")
    assert (models_dir / "tiny.gguf").read_bytes() == tiny_gguf


@pytest.mark.parametrize(
    ("redirects", "expected"),
    [
        ({"/a": "ftp://127.0.0.1/tiny.gguf"}, "only http and https"),
        ({"/a": "file:///etc/passwd"}, "only http and https"),
        ({f"/{i}": f"/{i + 1}" for i in range(10)}, "more than 5 redirects"),
    ],
)
def test_a_redirect_to_another_scheme_or_too_many_redirects_are_refused(
    files: FileServer, models_dir: Path, redirects: dict[str, str], expected: str
) -> None:
    files.behaviour.redirects = {"/a": "/0", **redirects} if "/0" in redirects else redirects
    error = failure(folder_at(models_dir), files.file_url("/a"), "tiny")
    assert (error.code, expected in error.message) == ("BAD_USER_INPUT", True), error.message
    assert left_in(models_dir) == []


def test_a_missing_file_is_refused_without_retrying(files: FileServer, models_dir: Path) -> None:
    error = failure(folder_at(models_dir), files.file_url("/nothing.gguf"), "nothing")
    assert (error.code, "404" in error.message) == ("BAD_USER_INPUT", True)
    assert len(files.behaviour.requests) == 1
    assert left_in(models_dir) == []


def test_a_server_that_keeps_cutting_fails_retryable_after_the_attempts(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    files.behaviour.cut_at, files.behaviour.cuts = 1000, 100
    error = failure(folder_at(models_dir, attempts=3), files.file_url(TINY), "tiny")
    assert (error.code, error.retryable) == ("SERVICE_UNAVAILABLE", True)
    assert len(files.behaviour.requests) == 3
    assert left_in(models_dir) == []


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "..", ""])
def test_a_name_that_is_not_a_model_name_never_touches_a_path(
    files: FileServer, tmp_path: Path, name: str
) -> None:
    models_dir = tmp_path / "models"
    error = failure(folder_at(models_dir), files.file_url(TINY), name)
    assert error.code == "BAD_USER_INPUT"
    assert files.behaviour.requests == []
    assert left_in(tmp_path) == []


def test_an_existing_model_is_replaced_only_when_asked(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    models_dir.mkdir()
    (models_dir / "tiny.gguf").write_bytes(b"old")
    error = failure(folder_at(models_dir), files.file_url(TINY), "tiny")
    assert (error.code, "--force" in error.message) == ("BAD_USER_INPUT", True)
    assert (models_dir / "tiny.gguf").read_bytes() == b"old"
    pull(folder_at(models_dir), files.file_url(TINY), "tiny", replace=True)
    assert (models_dir / "tiny.gguf").read_bytes() == tiny_gguf
    assert left_in(models_dir) == ["tiny.gguf"]


def test_a_cancelled_pull_leaves_nothing(
    files: FileServer, models_dir: Path, tiny_gguf: bytes
) -> None:
    files.behaviour.files[TINY] = tiny_gguf
    folder = folder_at(models_dir)
    with pytest.raises(DomainError) as failed:
        folder.pull(PullSource(files.file_url(TINY), "tiny"), Reports(), lambda: True)
    assert failed.value.code == "SERVICE_UNAVAILABLE"
    assert left_in(models_dir) == []


def test_delete_removes_a_model_or_every_part_of_a_split_one(models_dir: Path) -> None:
    models_dir.mkdir()
    for file in ("one.gguf", "big-00001-of-00002.gguf", "big-00002-of-00002.gguf", "keep.gguf"):
        (models_dir / file).write_bytes(b"GGUF")
    folder = folder_at(models_dir)
    folder.delete("one")
    folder.delete("big")
    assert left_in(models_dir) == ["keep.gguf"]
    with pytest.raises(DomainError) as missing:
        folder.delete("one")
    assert missing.value.code == "NOT_FOUND"
    with pytest.raises(DomainError) as bad:
        folder.delete("../keep")
    assert bad.value.code == "BAD_USER_INPUT"
