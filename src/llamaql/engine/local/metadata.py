"""Read what the server needs from a GGUF file's header, without loading the model.

The `gguf` package's `GGUFReader` parses every key/value entry into numpy views,
including the vocabulary and merge arrays: about 2.3 s for the 98 MB default model on
these machines, more for larger vocabularies. We only need a handful of scalar keys and
two token texts, so this walks the key/value section with `struct` over an mmap (tens of
milliseconds), using the `gguf` package's value-type constants, and never touches tensors.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf.constants import GGUF_MAGIC, GGUFValueType, LlamaFileType

from llamaql.ports.engine import ModelFileError

_MISSING_HINT = "get the default model with `make model`, or set LLAMAQL_MODEL_PATH to a GGUF file"

# Fixed-size scalar types and their struct codes (little-endian prefix added at use).
_SCALAR_FORMATS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "B",
    GGUFValueType.INT8: "b",
    GGUFValueType.UINT16: "H",
    GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I",
    GGUFValueType.INT32: "i",
    GGUFValueType.FLOAT32: "f",
    GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "Q",
    GGUFValueType.INT64: "q",
    GGUFValueType.FLOAT64: "d",
}
_TOKENS_KEY = "tokenizer.ggml.tokens"
_F16_BYTES = 2


@dataclass(frozen=True, slots=True)
class GgufMetadata:
    """The model facts the API and the engine show or need before (or without) loading."""

    name: str
    architecture: str
    trained_context: int
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    file_size: int
    # Facts for the models query and the memory estimate made before loading.
    parameters: int = 0  # tensor elements (0 when the header has no tensor infos)
    quantization: str = "unknown"  # general.file_type, as llama.cpp names it (Q4_1, ...)
    kv_bytes_per_token: int = 0  # f16 keys and values of every layer, for one token


@dataclass(slots=True)
class _StringArray:
    """Where a string array's elements start, so one element can be read later."""

    offset: int
    count: int


class _Cursor:
    """Sequential reads over the mapped header; struct errors mean a truncated file."""

    def __init__(self, buffer: mmap.mmap, endian: str) -> None:
        self.buffer = buffer
        self.endian = endian
        self.offset = 0

    def scalar(self, fmt: str) -> Any:
        full = self.endian + fmt
        (value,) = struct.unpack_from(full, self.buffer, self.offset)
        self.offset += struct.calcsize(full)
        return value

    def string(self) -> str:
        length = self.scalar("Q")
        end = self.offset + length
        if end > len(self.buffer):
            raise ValueError("string runs past the end of the file")
        text = bytes(self.buffer[self.offset : end]).decode("utf-8", errors="replace")
        self.offset = end
        return text

    def value(self, value_type: GGUFValueType) -> Any:
        if value_type == GGUFValueType.STRING:
            return self.string()
        if value_type == GGUFValueType.ARRAY:
            return self.array()
        return self.scalar(_SCALAR_FORMATS[value_type])

    def array(self) -> _StringArray | None:
        """Skip an array; string arrays are remembered (the vocabulary is one)."""
        item_type = GGUFValueType(self.scalar("I"))
        count = self.scalar("Q")
        start = self.offset
        if item_type == GGUFValueType.STRING:
            for _ in range(count):
                self.offset += 8 + self.scalar("Q")
            return _StringArray(start, count)
        if item_type == GGUFValueType.ARRAY:
            for _ in range(count):
                self.array()
            return None
        self.offset += count * struct.calcsize(_SCALAR_FORMATS[item_type])
        return None

    def string_at(self, array: _StringArray, index: int) -> str | None:
        if not 0 <= index < array.count:
            return None
        self.offset = array.offset
        for _ in range(index):
            self.offset += 8 + self.scalar("Q")
        return self.string()


def read_gguf_metadata(path: Path) -> GgufMetadata:
    """Read name, architecture, trained context, chat template and bos/eos token texts.

    Raises ModelFileError when the file is missing or is not a GGUF file.
    """
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path} ({_MISSING_HINT})")
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(path, buf)
    except ModelFileError:
        raise
    except (ValueError, struct.error, OSError) as exc:
        # ValueError covers an empty file (mmap), unknown value types and bad lengths.
        raise ModelFileError(f"{path} is not a readable GGUF file: {exc}") from exc


def _parse(path: Path, buffer: mmap.mmap) -> GgufMetadata:
    if len(buffer) < 24 or struct.unpack_from("<I", buffer, 0)[0] != GGUF_MAGIC:
        raise ModelFileError(f"{path} is not a GGUF file (bad magic number)")
    # The version is small; read little-endian it looks huge when the file is big-endian.
    endian = "<" if struct.unpack_from("<I", buffer, 4)[0] < 0x10000 else ">"
    cursor = _Cursor(buffer, endian)
    cursor.offset = 4
    version = cursor.scalar("I")
    if version < 2:
        raise ModelFileError(f"{path} uses GGUF version {version}; version 2 or later is needed")
    tensor_count = cursor.scalar("Q")
    kv_count = cursor.scalar("Q")
    fields: dict[str, Any] = {}
    for _ in range(kv_count):
        key = cursor.string()
        fields[key] = cursor.value(GGUFValueType(cursor.scalar("I")))
    parameters = _count_parameters(cursor, tensor_count)
    return _metadata_from_fields(path, fields, cursor, parameters)


def _count_parameters(cursor: _Cursor, tensor_count: int) -> int:
    """The elements of every tensor, from the tensor infos after the key/value section
    (names and shapes only: the weights are never read)."""
    total = 0
    for _ in range(tensor_count):
        cursor.offset += 8 + cursor.scalar("Q")  # the name
        dims = cursor.scalar("I")
        elements = 1
        for _ in range(dims):
            elements *= cursor.scalar("Q")
        cursor.offset += 4 + 8  # type, data offset
        total += elements
    return total


def _quantization(file_type: Any) -> str:
    if not isinstance(file_type, int):
        return "unknown"
    try:
        return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"type {file_type}"


def _kv_bytes_per_token(fields: dict[str, Any], architecture: str) -> int:
    """f16 keys and values of every layer for one token (what llama.cpp allocates)."""

    def number(key: str) -> int:
        value = fields.get(f"{architecture}.{key}")
        return int(value) if isinstance(value, int) else 0

    layers, width = number("block_count"), number("embedding_length")
    heads = number("attention.head_count") or 1
    kv_heads = number("attention.head_count_kv") or heads
    return layers * 2 * (width // heads * kv_heads) * _F16_BYTES


def _metadata_from_fields(
    path: Path, fields: dict[str, Any], cursor: _Cursor, parameters: int
) -> GgufMetadata:
    architecture = str(fields.get("general.architecture", "unknown"))
    tokens = fields.get(_TOKENS_KEY)

    def token_text(key: str) -> str | None:
        token_id = fields.get(key)
        if not isinstance(tokens, _StringArray) or not isinstance(token_id, int):
            return None
        return cursor.string_at(tokens, token_id)

    template = fields.get("tokenizer.chat_template")
    context = fields.get(f"{architecture}.context_length")
    return GgufMetadata(
        name=str(fields.get("general.name") or path.stem),
        architecture=architecture,
        trained_context=int(context) if isinstance(context, int) else 0,
        chat_template=template if isinstance(template, str) and template.strip() else None,
        bos_token=token_text("tokenizer.ggml.bos_token_id"),
        eos_token=token_text("tokenizer.ggml.eos_token_id"),
        file_size=path.stat().st_size,
        parameters=parameters,
        quantization=_quantization(fields.get("general.file_type")),
        kv_bytes_per_token=_kv_bytes_per_token(fields, architecture),
    )
