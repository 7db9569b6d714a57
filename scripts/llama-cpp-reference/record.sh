#!/usr/bin/env bash
# Records what llama.cpp computes on SmolLM2-135M-Instruct.Q4_1.gguf, the references of
# tests/integration/llama_cpp.rs: greedy ids for the prompts in prompts.txt and the f32 tensors
# of layer 0 and of the output for the first prompt. Run once by hand (not in CI): it builds
# llama.cpp from the PyPI sdist of llama-cpp-python 0.3.36 (llama.cpp 0c1e570), natively.
#
#   scripts/llama-cpp-reference/record.sh [STEPS]   (default 24 greedy steps)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
steps="${1:-24}"
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
out="$root/tests/fixtures/llama-cpp"
work="${LLAMA_CPP_WORK:-$root/target/llama-cpp-reference}"
[ -s "$model" ] || bash "$root/scripts/fetch-test-model.sh"
mkdir -p "$work" "$out/smollm2-tensors"
if [ ! -d "$work/llama_cpp_python-0.3.36" ]; then
  python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "llama-cpp-python==0.3.36"
  tar -xzf "$work/llama_cpp_python-0.3.36.tar.gz" -C "$work"
fi
src="$work/llama_cpp_python-0.3.36/vendor/llama.cpp"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=OFF \
  -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$work/build" --target llama -j"$(nproc)" >/dev/null
g++ -O2 -std=c++17 "$here/greedy.cpp" -I"$src/include" -I"$src/ggml/include" \
  -L"$work/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$work/build/bin" -o "$work/greedy"

tensors="$work/tensors"
rm -rf "$tensors" && mkdir -p "$tensors"
GREEDY_TENSORS="$tensors" "$work/greedy" "$model" "$steps" <"$here/prompts.txt" 2>/dev/null \
  >"$out/smollm2-greedy.jsonl"
# the first tensor of each name the tests read (Qcur and Kcur recur after RoPE)
rm -f "$out"/smollm2-tensors/*.f32
keep=" attn_norm Qcur Kcur Vcur kqv_out attn_out ffn_inp ffn_norm ffn_swiglu ffn_out result_norm result_output "
for f in $(ls "$tensors" | sort); do
  name="$(echo "$f" | sed -E 's/^[0-9]+-//; s/-0-[0-9x]+\.f32$//; s/-[0-9x]+\.f32$//')"
  if [[ "$keep" == *" $name "* && ! -e "$out/smollm2-tensors/$name.f32" ]]; then
    cp "$tensors/$f" "$out/smollm2-tensors/$name.f32"
  fi
done
echo "record: $(wc -l <"$out/smollm2-greedy.jsonl") prompts, $(ls "$out/smollm2-tensors" | wc -l) tensors in $out" >&2
