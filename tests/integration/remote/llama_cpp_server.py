"""Runs llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`, same
arguments) with llama.cpp's repacking buffer types off, as llamaql's own engine loads
models: on these CPUs the AMX repacking path crashes on the first decode (FINDINGS.md),
and the server has no flag for it (llama-server's is `--no-repack`)."""

from __future__ import annotations

import llama_cpp.llama_cpp as api
from llama_cpp.server.__main__ import main

_defaults = api.llama_model_default_params


def _without_repacking() -> api.llama_model_params:
    params: api.llama_model_params = _defaults()
    params.use_extra_bufts = False
    return params


api.llama_model_default_params = _without_repacking  # read by Llama() when it loads

if __name__ == "__main__":
    main()  # type: ignore[no-untyped-call]
