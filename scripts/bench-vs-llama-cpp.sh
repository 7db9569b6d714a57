#!/usr/bin/env bash
# The tuned engine against llama.cpp on the same synthetic GGUF files, pinned to the same CPUs
# with the same thread count, in one session: llama-bench for prefill and batch-1 decode,
# llama-batched-bench for batch-8 decode. Prints tokens/s of both, their ratio, and batch-1
# decode's share of the read bandwidth calibrated just before and just after each data type's
# runs, the higher of the two (the host's bandwidth drifts over minutes).
#
# llama-bench and llama-batched-bench are built once from the llama-cpp-python sdist (PyPI) into
# .peers/ (git-ignored); nothing of llama.cpp is committed.
#
# Usage: scripts/bench-vs-llama-cpp.sh [PRESET...]      (default: llama-3.2-1b)
# Environment: DTYPES (default "q4_0 q4_1 q8_0 q4_k f16 bf16 f32"), PROMPT (128), LONG_PROMPT
#              (512), GEN (32), REPS (3), THREADS (all CPUs this process may use).
# Columns: prefill tokens/s at both prompt lengths, batch-1 decode tokens/s and batch-8 decode
# tokens/s (all sequences, 16-token prompts), ours then llama.cpp's then their ratio; batch-1
# decode's share of the calibrated read bandwidth, ours and llama.cpp's.
set -euo pipefail
cd "$(dirname "$0")/.."
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
bench="$src/build/bin/llama-bench"
batched="$src/build/bin/llama-batched-bench"
if [ ! -x "$bench" ] || [ ! -x "$batched" ]; then
  echo "building llama-bench and llama-batched-bench into $src/build (about 10 minutes on 2 cores)" >&2
  ensure_cmake
  cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF >/dev/null
  cmake --build "$src/build" -j"$(nproc)" --target llama-bench llama-batched-bench >/dev/null
fi
cargo build --release --quiet
bin="$root/target/release/llamaperf"

presets=("$@")
[ "${#presets[@]}" -gt 0 ] || presets=(llama-3.2-1b)
dtypes=${DTYPES:-"q4_0 q4_1 q8_0 q4_k f16 bf16 f32"}
threads=${THREADS:-$(nproc)}
cpus="0-$((threads - 1))"
prompt=${PROMPT:-128}
long_prompt=${LONG_PROMPT:-512}
gen=${GEN:-32}
reps=${REPS:-3}
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

ours() { # name, then run flags
  local name=$1; shift
  "$bin" run "$@" --cores "$cpus" --warmup 1 --repetitions "$reps" --counters none --json \
    >"$out/$name.json" 2>"$out/$name.err" || { cat "$out/$name.err" >&2; exit 1; }
}

echo "llama.cpp: $src" >&2
echo "threads $threads on cpus $cpus; pp$prompt, pp$long_prompt, tg$gen at batch 1 and 8; $reps repetitions" >&2
printf '%-13s %-5s | %-21s | %-21s | %-21s | %-21s | %6s %6s\n' preset dtype "pp$prompt ours/l.cpp" "pp$long_prompt ours/l.cpp" "tg ours/l.cpp" "tg b8 ours/l.cpp" "%bw" "l.%bw"
for preset in "${presets[@]}"; do
  for dtype in $dtypes; do
    model="$("$bin" model synth "$preset" --dtype "$dtype" 2>/dev/null)"
    "$bin" calibrate --cores "$threads" --dtypes q4_k --json >"$out/calibration.json" 2>/dev/null
    ours short --model "$preset" --dtype "$dtype" --prompt-tokens "$prompt" --gen-tokens "$gen"
    ours long --model "$preset" --dtype "$dtype" --prompt-tokens "$long_prompt" --gen-tokens 2
    ours batch --model "$preset" --dtype "$dtype" --batch 8 --prompt-tokens 16 --gen-tokens "$gen"
    taskset -c "$cpus" "$bench" -m "$model" -t "$threads" -p "$prompt,$long_prompt" -n "$gen" -r "$reps" -o json \
      >"$out/llama.json" 2>"$out/llama.err" || { cat "$out/llama.err" >&2; exit 1; }
    taskset -c "$cpus" "$batched" -m "$model" -t "$threads" -c $((8 * (16 + gen))) -b 512 -ub 512 \
      -npp 16 -ntg "$gen" -npl 8 --output-format jsonl >"$out/batched.jsonl" 2>"$out/batched.err" \
      || { cat "$out/batched.err" >&2; exit 1; }
    "$bin" calibrate --cores "$threads" --dtypes q4_k --json >"$out/calibration-after.json" 2>/dev/null
    python3 - "$preset" "$dtype" "$out" "$prompt" "$long_prompt" <<'PY'
import json, sys
preset, dtype, out, prompt, long_prompt = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
load = lambda name: json.load(open(f"{out}/{name}.json"))
short, long, batch, llama = (load(n) for n in ("short", "long", "batch", "llama"))
batched = [json.loads(line) for line in open(f"{out}/batched.jsonl") if line.startswith("{")][-1]
mean = lambda r, key: r["summary"][key]["mean"]
lpp = lambda n: next(t["avg_ts"] for t in llama if t["n_prompt"] == n and t["n_gen"] == 0)
ltg = next(t["avg_ts"] for t in llama if t["n_gen"] > 0 and t["n_prompt"] == 0)
bw = max(b["read_gb_s"] for name in ("calibration", "calibration-after")
         for b in load(name)["bandwidth"] if b["scope"] == "machine")
weights = short["model"]["weight_bytes"]
pct = lambda tok_s: 100 * tok_s * weights / 1e9 / bw
pair = lambda a, b: f"{a:7.1f} {b:7.1f} {a / b:5.2f}"
tg = mean(short, "decode_tok_s")
print(f"{preset:<13} {dtype:<5} | {pair(mean(short, 'prefill_tok_s'), lpp(prompt))} | "
      f"{pair(mean(long, 'prefill_tok_s'), lpp(long_prompt))} | {pair(tg, ltg)} | "
      f"{pair(mean(batch, 'decode_tok_s'), batched['speed_tg'])} | {pct(tg):5.0f}% {pct(ltg):5.0f}%")
PY
  done
done
