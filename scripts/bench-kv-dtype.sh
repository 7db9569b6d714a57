#!/usr/bin/env bash
# Decode tokens/s with each KV cache type at a long context, run alternately (f32, f16, ...,
# f32, f16, ...) so that a shared host's drift hits every type alike.
# Usage: scripts/bench-kv-dtype.sh [PRESET]   (default: llama-3.2-1b)
# Environment: DTYPE (weights, default q4_0), KV ("f32 f16": the tuned engine's types; an entry
#              llama.cpp:T runs the llama.cpp engine with KV type T and flash attention on),
#              DEPTH (0: tokens filled untimed before the prompt, as `run --depth`), PROMPT
#              (2048), GEN (32), ROUNDS (5), WARMUP (1), REPS (1 per run), THREADS (2),
#              BIN (default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=./target/release/llamaperf
fi
preset=${1:-llama-3.2-1b}
kvs=${KV:-"f32 f16"}
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for round in $(seq "${ROUNDS:-5}"); do
  for kv in $kvs; do
    case "$kv" in
      llama.cpp:*) engine=(--engine llama.cpp --flash-attn on --kv-dtype "${kv#llama.cpp:}") ;;
      *) engine=(--engine tuned --kv-dtype "$kv") ;;
    esac
    "$bin" run --model "$preset" --dtype "${DTYPE:-q4_0}" "${engine[@]}" --depth "${DEPTH:-0}" \
      --prompt-tokens "${PROMPT:-2048}" --gen-tokens "${GEN:-32}" --threads "${THREADS:-2}" \
      --warmup "${WARMUP:-1}" --repetitions "${REPS:-1}" --counters none --json \
      >"$out/$kv.$round.json" 2>"$out/err" || { cat "$out/err" >&2; exit 1; }
  done
done
python3 - "$out" $kvs <<'PY'
import json, statistics, sys, glob
out, kvs = sys.argv[1], sys.argv[2:]
print(f"{'kv':<14} {'decode tok/s per run':<40} {'median':>7}")
for kv in kvs:
    runs = [json.load(open(p))["record"]["summary"] for p in sorted(glob.glob(f"{out}/{kv}.*.json"))]
    tg = [r["decode_tok_s"]["mean"] for r in runs]
    print(f"{kv:<14} {' '.join(f'{t:.2f}' for t in tg):<40} {statistics.median(tg):7.2f}")
PY
