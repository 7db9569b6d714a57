#!/usr/bin/env bash
# The tuned engine against llama.cpp's llama-bench on the same synthetic GGUF files, pinned to
# the same CPUs with the same thread count, in one session. Prints tokens/s of both, their ratio,
# and decode's share of the calibrated read bandwidth.
#
# llama-bench is built once from the llama-cpp-python sdist (PyPI) into .peers/ (git-ignored);
# nothing of llama.cpp is committed.
#
# Usage: scripts/bench-vs-llama-cpp.sh [PRESET...]      (default: llama-3.2-1b)
# Environment: DTYPES (default "q4_0 q4_1 q8_0 q4_k f16 bf16 f32"), PROMPT (128), GEN (32),
#              REPS (3), THREADS (all CPUs this process may use).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
peers="$root/.peers"
bench="$(ls "$peers"/sdist/llama_cpp_python-*/vendor/llama.cpp/build/bin/llama-bench 2>/dev/null | head -1 || true)"
if [ -z "$bench" ]; then
  echo "building llama-bench into $peers (about 10 minutes on 2 cores)" >&2
  command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake >/dev/null; }
  python3 -m pip install --quiet scikit-build-core
  mkdir -p "$peers/sdist"
  python3 -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation llama-cpp-python -d "$peers/sdist"
  tar -xzf "$(ls "$peers"/sdist/llama_cpp_python-*.tar.gz | head -1)" -C "$peers/sdist"
  src="$(ls -d "$peers"/sdist/llama_cpp_python-*/vendor/llama.cpp | head -1)"
  cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF >/dev/null
  cmake --build "$src/build" -j"$(nproc)" --target llama-bench >/dev/null
  bench="$src/build/bin/llama-bench"
fi
cargo build --release --quiet
bin="$root/target/release/llamaperf"

presets=("$@")
[ "${#presets[@]}" -gt 0 ] || presets=(llama-3.2-1b)
dtypes=${DTYPES:-"q4_0 q4_1 q8_0 q4_k f16 bf16 f32"}
threads=${THREADS:-$(nproc)}
cpus="0-$((threads - 1))"
prompt=${PROMPT:-128}
gen=${GEN:-32}
reps=${REPS:-3}
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$bin" calibrate --cores "$threads" --dtypes q4_k --json >"$out/calibration.json" 2>/dev/null
echo "llama-bench: $bench" >&2
echo "threads $threads on cpus $cpus, pp$prompt / tg$gen, $reps repetitions" >&2
printf '%-14s %-5s | %9s %9s %6s | %8s %8s %6s | %7s %7s\n' preset dtype "ours pp" "l.cpp pp" ratio "ours tg" "l.cpp tg" ratio "ours %bw" "l.cpp %bw"
for preset in "${presets[@]}"; do
  for dtype in $dtypes; do
    model="$("$bin" model synth "$preset" --dtype "$dtype" 2>/dev/null)"
    "$bin" run --model "$preset" --dtype "$dtype" --cores "$cpus" --prompt-tokens "$prompt" \
      --gen-tokens "$gen" --warmup 1 --repetitions "$reps" --counters none --json \
      >"$out/ours.json" 2>"$out/ours.err" || { cat "$out/ours.err" >&2; exit 1; }
    taskset -c "$cpus" "$bench" -m "$model" -t "$threads" -p "$prompt" -n "$gen" -r "$reps" -o json \
      >"$out/llama.json" 2>"$out/llama.err" || { cat "$out/llama.err" >&2; exit 1; }
    python3 - "$preset" "$dtype" "$out/ours.json" "$out/llama.json" "$out/calibration.json" <<'PY'
import json, sys
preset, dtype, ours, llama, cal = sys.argv[1:6]
ours, llama, cal = json.load(open(ours)), json.load(open(llama)), json.load(open(cal))
pp = ours["summary"]["prefill_tok_s"]["mean"]
tg = ours["summary"]["decode_tok_s"]["mean"]
lpp = next(t["avg_ts"] for t in llama if t["n_prompt"] > 0 and t["n_gen"] == 0)
ltg = next(t["avg_ts"] for t in llama if t["n_gen"] > 0 and t["n_prompt"] == 0)
bw = max(b["read_gb_s"] for b in cal["bandwidth"] if b["scope"] == "machine")
weights = ours["model"]["weight_bytes"]
pct = lambda tok_s: 100 * tok_s * weights / 1e9 / bw
print(f"{preset:<14} {dtype:<5} | {pp:9.1f} {lpp:9.1f} {pp/lpp:6.2f} | {tg:8.2f} {ltg:8.2f} {tg/ltg:6.2f} | {pct(tg):6.0f}% {pct(ltg):6.0f}%")
PY
  done
done
