#!/usr/bin/env bash
# Builds llama.cpp's llama-server, the reference that `python -m bench peer` measures
# llamaql against, from the llama.cpp vendored in the pinned llama-cpp-python sdist, so
# both sides run the same llama.cpp. Built once (about 6.5 minutes on 2 cores) into
# .build/llama-server/bin/llama-server; a stamp makes later runs instant.
#
# Option names checked against that tree: LLAMA_CURL is deprecated and ignored there (no
# download code to switch off); LLAMA_OPENSSL=OFF drops HTTPS; LLAMA_USE_PREBUILT_UI=OFF
# stops the build from fetching the web UI from Hugging Face (no internet here; the
# server then runs without its web page, which the benchmark does not use).
set -euo pipefail

version=0.3.36
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
src_dir="$here/.build/llama-server-src"
build_dir="$here/.build/llama-server"
binary="$build_dir/bin/llama-server"
stamp="$build_dir/.stamp"
cmake_args=(-DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=ON
  -DCMAKE_BUILD_TYPE=Release)
key="llama-cpp-python-$version ${cmake_args[*]}"

if [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && [ -x "$binary" ]; then
  echo "llama-server from llama-cpp-python $version is built: $binary"
  exit 0
fi

sdist="$src_dir/llama_cpp_python-$version.tar.gz"
if [ ! -f "$sdist" ]; then
  echo "downloading the llama-cpp-python $version sdist into $src_dir ..."
  mkdir -p "$src_dir"
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: -d "$src_dir" "llama-cpp-python==$version"
fi
tree="$src_dir/llama_cpp_python-$version/vendor/llama.cpp"
if [ ! -f "$tree/CMakeLists.txt" ]; then
  tar xzf "$sdist" -C "$src_dir"
fi

echo "building llama-server (about 6.5 minutes on 2 cores) ..."
rm -f "$stamp"
cmake -S "$tree" -B "$build_dir" "${cmake_args[@]}"
cmake --build "$build_dir" -j"${JOBS:-$(nproc)}" --target llama-server
"$binary" --version
echo "$key" > "$stamp"
echo "llama-server built: $binary"
