#!/usr/bin/env bash
# Installs what building llama.cpp with GGML_VULKAN=on needs, and prints the extra
# CMAKE_ARGS the build must use. Debian 12's Vulkan headers (1.3.239) are too old for
# llama.cpp's ggml-vulkan.cpp (vk::LayerSettingEXT): there we unpack Debian 13's
# libvulkan-dev and spirv-headers into a build-only folder (nothing is installed from
# trixie system-wide) and point the compiler at them. On Debian 13 the system packages
# are new enough.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
headers_dir="$here/.build/vulkan-headers"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

need=()
for pkg in libvulkan-dev glslc spirv-headers mesa-vulkan-drivers libvulkan1 cmake; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "vulkan: installing build dependencies: ${need[*]}" >&2
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >&2
fi

. /etc/os-release
if [ "${VERSION_ID:-}" = "12" ]; then
  if [ ! -f "$headers_dir/usr/include/vulkan/vulkan.hpp" ]; then
    echo "vulkan: Debian 12 headers are too old; fetching Debian 13's into $headers_dir" >&2
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial" "$headers_dir"
    echo 'deb http://deb.debian.org/debian trixie main' > "$tmp/sources.list"
    apt_opts=(-oDir::Etc::SourceList="$tmp/sources.list" -oDir::Etc::SourceParts=/dev/null
              -oDir::State::Lists="$tmp/lists" -oDebug::NoLocking=1)
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$tmp" && apt-get "${apt_opts[@]}" download libvulkan-dev spirv-headers >&2)
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$headers_dir"; done
    rm -rf "$tmp"
  fi
  echo "-DVulkan_INCLUDE_DIR=$headers_dir/usr/include -DCMAKE_CXX_FLAGS=-I$headers_dir/usr/include"
fi
