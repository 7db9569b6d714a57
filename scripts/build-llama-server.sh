#!/usr/bin/env bash
# Builds llama.cpp's llama-server (the OpenAI-compatible server the openai engine's real-server
# test starts) from the PyPI sdist of llama-cpp-python 0.3.36, whose vendored llama.cpp it is;
# the llama-cpp-2 crate's vendored source has no server. Idempotent and cached: the binary lives
# in ~/.cache/llamaperf/llama-server-<version>-<cpu flags hash>/bin/llama-server (built natively,
# so the key holds the CPU's flags) and a second run only prints its path.
#
#   scripts/build-llama-server.sh        prints the binary's path on stdout
#
# Environment: LLAMAPERF_CACHE (default ~/.cache/llamaperf); LLAMA_CPP_PYTHON_SDIST, a local
# llama_cpp_python-0.3.36.tar.gz to build from instead of downloading it.
set -euo pipefail
version=0.3.36
flags="$(grep -m1 '^flags' /proc/cpuinfo | md5sum | cut -c1-8)"
cache="${LLAMAPERF_CACHE:-$HOME/.cache/llamaperf}/llama-server-$version-$flags"
binary="$cache/bin/llama-server"
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi
for tool in cmake c++ python3; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
work="$cache/work"
rm -rf "$work" && mkdir -p "$work"
sdist="${LLAMA_CPP_PYTHON_SDIST:-}"
if [ -z "$sdist" ]; then
  python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "llama-cpp-python==$version"
  sdist="$work/llama_cpp_python-$version.tar.gz"
fi
tar -xzf "$sdist" -C "$work"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
start=$(date +%s)
echo "build-llama-server: building llama-server $version in $work (about 5 minutes on 2 cores)" >&2
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=OFF \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log" 2>&1 \
  || { tail -n 30 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target llama-server -j"$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -n 30 "$work/build.log" >&2; exit 1; }
mkdir -p "$cache/bin"
cp "$work/build/bin/llama-server" "$binary.tmp" && mv "$binary.tmp" "$binary"
rm -rf "$work"
echo "build-llama-server: built in $(( $(date +%s) - start )) s" >&2
echo "$binary"
