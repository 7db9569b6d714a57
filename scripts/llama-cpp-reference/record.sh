#!/usr/bin/env bash
# Records what llama.cpp computes on SmolLM2-135M-Instruct.Q4_1.gguf, the references of
# tests/integration/llama_cpp.rs: greedy ids for the prompts in prompts.txt and the f32 tensors
# of layer 0 and of the output for the first prompt; and for the same model requantized to Q4_0
# and Q4_K_M by llama-quantize, layer 0's Q projection (its GGUF bytes, input and output). Run
# once by hand (not in CI): it builds llama.cpp from the PyPI sdist of llama-cpp-python 0.3.36
# (llama.cpp 0c1e570), natively, and reads GGUF files with its gguf-py (needs numpy).
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
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$work/build" --target llama llama-quantize -j"$(nproc)" >/dev/null
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

# Q4_0 (Q8_0 activations) and Q4_K (Q8_K) products: one layer-0 matrix of requantized files,
# its GGUF bytes, llama.cpp's input and output. `--pure` keeps llama-quantize's K-quant mixture
# from giving ffn_down Q6_K; rows of 576 (not whole super-blocks) fall back to other types.
record_matrix() { # KIND TENSOR INPUT OUTPUT [QUANTIZE FLAGS]
  local kind="$1" tensor="$2" input="$3" output="$4"
  shift 4
  local lower file dir
  lower="$(echo "$kind" | tr 'A-Z' 'a-z')"
  file="$work/smollm2-$lower.gguf"
  "$work/build/bin/llama-quantize" --allow-requantize "$@" "$model" "$file" "$kind" >/dev/null 2>&1
  dir="$out/smollm2-${lower%_m}"
  rm -rf "$dir" "$tensors" && mkdir -p "$dir" "$tensors"
  head -n 1 "$here/prompts.txt" | GREEDY_TENSORS="$tensors" "$work/greedy" "$file" 1 >/dev/null 2>&1
  cp "$(ls "$tensors"/*-"$input"-0-*.f32 | sort | head -n 1)" "$dir/input.f32"
  cp "$(ls "$tensors"/*-"$output"-0-*.f32 | sort | head -n 1)" "$dir/output.f32"
  PYTHONPATH="$src/gguf-py" python3 - "$file" "$dir" "blk.0.$tensor.weight" <<'PY'
import sys, gguf
reader = gguf.GGUFReader(sys.argv[1])
t = next(t for t in reader.tensors if t.name == sys.argv[3])
rows, cols = int(t.shape[1]), int(t.shape[0])
open(f"{sys.argv[2]}/{t.tensor_type.name}-{rows}x{cols}", "wb").write(t.data.tobytes())
PY
}
record_matrix Q4_0 attn_q attn_norm Qcur
record_matrix Q4_K_M ffn_down ffn_swiglu ffn_out --pure
echo "record: $(ls "$out"/smollm2-q4_*/*-*x*)" >&2
