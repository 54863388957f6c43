#!/usr/bin/env bash
# Installs llama-cpp-python into .venv for one backend: cpu (default) or vulkan.
# The wheel is built once per backend into .build/wheels/<backend>/ and reused: pip's own
# wheel cache ignores CMAKE_ARGS, so it cannot tell a CPU build from a Vulkan one.
set -euo pipefail

version=0.3.36
backend=${LLAMAQL_BACKEND:-cpu}
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
stamp="$venv/.llama-backend"
wheels="$here/.build/wheels/$backend"

case "$backend" in
  cpu|vulkan) ;;
  *) echo "LLAMAQL_BACKEND=$backend: must be cpu or vulkan" >&2; exit 2 ;;
esac

if [ "$(cat "$stamp" 2>/dev/null)" = "$backend-$version" ] \
    && "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "llama-cpp-python $version ($backend) is installed"
  exit 0
fi

wheel=$(ls "$wheels"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  cmake_args="-DLLAVA_BUILD=OFF"
  if [ "$backend" = vulkan ]; then
    cmake_args="$cmake_args -DGGML_VULKAN=on $(bash "$here/scripts/vulkan-build-deps.sh")"
  fi
  echo "building llama-cpp-python $version for $backend (about 5 minutes on 2 cores) ..."
  mkdir -p "$wheels"
  CMAKE_ARGS="$cmake_args" "${pip[@]}" wheel --no-cache-dir --no-deps -w "$wheels" \
    "llama-cpp-python==$version"
  wheel=$(ls "$wheels"/llama_cpp_python-"$version"-*.whl | head -n 1)
fi
"${pip[@]}" install --quiet --force-reinstall --no-deps "$wheel"
"${pip[@]}" install --quiet "$wheel"
echo "$backend-$version" > "$stamp"
echo "llama-cpp-python $version ($backend) installed from $wheel"
