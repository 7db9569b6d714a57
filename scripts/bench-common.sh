# Sourced by the bench scripts against llama.cpp: builds llama-bench and llama-batched-bench once
# from the llama-cpp-python sdist (PyPI) into .peers/ (git-ignored; nothing of llama.cpp is
# committed), and llamaperf in cargo profile PROFILE (default release); sets $bench, $batched and
# $bin. LLAMA_CPP_CFLAGS: extra compiler flags for llama.cpp, built into a folder of their own.
root="$PWD"
peers="$root/.peers"
ensure_cmake() { command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake >/dev/null; }; }
src="$(ls -d "$peers"/sdist/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | head -1 || true)"
if [ -z "$src" ]; then
  ensure_cmake
  python3 -m pip install --quiet scikit-build-core
  mkdir -p "$peers/sdist"
  python3 -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation llama-cpp-python -d "$peers/sdist"
  tar -xzf "$(ls "$peers"/sdist/llama_cpp_python-*.tar.gz | head -1)" -C "$peers/sdist"
  src="$(ls -d "$peers"/sdist/llama_cpp_python-*/vendor/llama.cpp | head -1)"
fi
cflags=${LLAMA_CPP_CFLAGS:-}
build="$src/build${cflags:+-$(printf %s "$cflags" | md5sum | cut -c1-8)}"
bench="$build/bin/llama-bench"
batched="$build/bin/llama-batched-bench"
if [ ! -x "$bench" ] || [ ! -x "$batched" ]; then
  echo "building llama-bench and llama-batched-bench into $build (about 10 minutes on 2 cores)" >&2
  ensure_cmake
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" >/dev/null
  cmake --build "$build" -j"$(nproc)" --target llama-bench llama-batched-bench >/dev/null
fi
profile=${PROFILE:-release}
cargo build --profile "$profile" --quiet
bin="$root/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/llamaperf"
