"""Which ggml backends and devices the installed llama.cpp has (Vulkan GPU or CPU only).

llama-cpp-python does not bind ggml's device registry, so this declares the few
functions it needs on the libggml that llama-cpp-python already loaded.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# enum ggml_backend_dev_type
_DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}


@dataclass(frozen=True, slots=True)
class Device:
    """One ggml backend device."""

    name: str  # e.g. "Vulkan0", "CPU"
    description: str  # e.g. "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)"
    kind: str  # cpu / gpu / igpu / accel


def _ggml() -> Any:
    from llama_cpp._ggml import libggml

    lib = libggml
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_count.argtypes = []
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_count.argtypes = []
    lib.ggml_backend_reg_get.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_reg_name.restype = ctypes.c_char_p
    lib.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    return lib


def backend_names() -> list[str]:
    """The ggml backends compiled into llama.cpp, e.g. ["Vulkan", "CPU"]; [] if unknown."""
    try:
        lib = _ggml()
        count = lib.ggml_backend_reg_count()
        return [
            lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i)).decode() for i in range(count)
        ]
    except (ImportError, AttributeError, OSError) as exc:
        logger.debug("cannot list ggml backends: %s", exc)
        return []


def list_devices() -> list[Device]:
    """Devices ggml registered (GPUs first, then the CPU); [] when it cannot tell."""
    try:
        lib = _ggml()
        devices = []
        for index in range(lib.ggml_backend_dev_count()):
            dev = lib.ggml_backend_dev_get(index)
            devices.append(
                Device(
                    name=(lib.ggml_backend_dev_name(dev) or b"?").decode(errors="replace"),
                    description=(lib.ggml_backend_dev_description(dev) or b"").decode(
                        errors="replace"
                    ),
                    kind=_DEVICE_TYPES.get(lib.ggml_backend_dev_type(dev), "unknown"),
                )
            )
        return devices
    except (ImportError, AttributeError, OSError) as exc:
        logger.debug("cannot list ggml devices: %s", exc)
        return []


def offload_devices(devices: list[Device]) -> list[Device]:
    """The devices llama.cpp offloads layers to (Vulkan GPUs here)."""
    return [d for d in devices if d.kind in {"gpu", "igpu"}]


def describe_cpu(devices: list[Device]) -> str:
    cpu = next((d for d in devices if d.kind == "cpu"), None)
    return f"CPU ({cpu.description})" if cpu and cpu.description else "CPU"
