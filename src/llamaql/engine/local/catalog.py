"""The models folder: every `*.gguf` under `LLAMAQL_MODELS_DIR` is a model, named by
`ports.model_names.model_name` (split models as one).

The folder is scanned again for each question (a directory walk); GGUF headers are read
once per file version (path, modification time, size), so a file added, replaced or
removed while the server runs shows at the next scan. `LLAMAQL_MODEL_PATH` keeps naming
the default model's file: one outside the folder is still listed, under its stem.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from llamaql.config import EngineConfig
from llamaql.engine.local.metadata import GgufMetadata, read_gguf_metadata
from llamaql.ports.engine import ModelFileError
from llamaql.ports.model_names import model_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One model file of the catalog and its header's facts."""

    name: str
    path: Path
    meta: GgufMetadata


class ModelCatalog:
    """The models folder plus the default model's file; thread-safe (scans run on worker
    threads)."""

    def __init__(self, config: EngineConfig) -> None:
        self._folder = config.models_dir
        self._default_path = config.model_path
        self._default_name = config.model or _stem_name(config.model_path)
        self._lock = threading.Lock()
        self._headers: dict[Path, tuple[int, int, GgufMetadata | None]] = {}
        self._reported: set[tuple[Path, ...]] = set()

    @property
    def default_name(self) -> str:
        """LLAMAQL_MODEL, else the name of LLAMAQL_MODEL_PATH's file."""
        return self._default_name

    def scan(self) -> dict[str, CatalogModel]:
        """Every readable model now, by name (sorted). Two files with one name: the one
        whose path sorts first, by depth then text, and a warning once."""
        found: dict[str, list[Path]] = {}
        for path in self._files():
            name = model_name(path)
            if name is not None:
                found.setdefault(name, []).append(path)
        default = self._default_path
        default_name = _stem_name(default)
        if default.is_file():
            found.setdefault(default_name, []).append(default)
        models: dict[str, CatalogModel] = {}
        for name in sorted(found):
            paths = sorted(set(found[name]), key=lambda p: (len(p.parts), str(p)))
            if name == default_name and default in paths:
                # LLAMAQL_MODEL_PATH names the default's file, whatever else has its name.
                paths.remove(default)
                paths.insert(0, default)
            if len(paths) > 1:
                self._report_duplicates(name, paths)
            meta = self._header(paths[0])
            if meta is not None:
                models[name] = CatalogModel(name, paths[0], meta)
        return models

    def find(self, name: str) -> CatalogModel | None:
        return self.scan().get(name)

    def _files(self) -> list[Path]:
        try:
            return sorted(self._folder.rglob("*.gguf"))
        except OSError as exc:
            logger.warning("cannot read the models folder %s: %s", self._folder, exc)
            return []

    def _header(self, path: Path) -> GgufMetadata | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._headers.get(path)
        if cached is not None and cached[:2] == key:
            return cached[2]
        try:
            meta: GgufMetadata | None = read_gguf_metadata(path)
        except ModelFileError as exc:
            logger.warning("model file skipped: %s", exc)
            meta = None
        with self._lock:
            self._headers[path] = (*key, meta)
        return meta

    def _report_duplicates(self, name: str, paths: list[Path]) -> None:
        key = tuple(paths)
        with self._lock:
            if key in self._reported:
                return
            self._reported.add(key)
        logger.warning(
            "%d files are named model %r: using %s, ignoring %s",
            len(paths),
            name,
            paths[0],
            ", ".join(str(p) for p in paths[1:]),
        )


def _stem_name(path: Path) -> str:
    """The default file's model name (its stem when model_name refuses it)."""
    return model_name(path) or path.stem
