#!/usr/bin/env bash
# Tuned vs reference engine, tokens/s side by side on the same synthetic GGUF, same threads.
# Usage: scripts/bench-engine.sh [PRESET...]   (default: tiny llama-3.2-1b)
# Environment: DTYPES (default "q4_0 q4_1 q8_0 q4_k f16 f32"), PROMPT (128), GEN (32),
#              REPS (3), THREADS (all allowed CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=./target/release/llamaperf
presets=("$@")
[ "${#presets[@]}" -gt 0 ] || presets=(tiny llama-3.2-1b)
dtypes=${DTYPES:-"q4_0 q4_1 q8_0 q4_k f16 f32"}
threads=()
[ -z "${THREADS:-}" ] || threads=(--threads "$THREADS")
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

printf '%-14s %-6s %10s %10s %10s %10s %8s %8s\n' preset dtype "ref pp" "tuned pp" "ref tg" "tuned tg" "pp x" "tg x"
for preset in "${presets[@]}"; do
  for dtype in $dtypes; do
    for engine in reference tuned; do
      "$bin" run --model "$preset" --dtype "$dtype" --engine "$engine" \
        --prompt-tokens "${PROMPT:-128}" --gen-tokens "${GEN:-32}" \
        --warmup 1 --repetitions "${REPS:-3}" "${threads[@]}" --json \
        >"$out/$engine.json" 2>"$out/$engine.err" || { cat "$out/$engine.err" >&2; exit 1; }
    done
    python3 - "$preset" "$dtype" "$out/reference.json" "$out/tuned.json" <<'PY'
import json, sys
preset, dtype, ref, tuned = sys.argv[1], sys.argv[2], *(json.load(open(p))["summary"] for p in sys.argv[3:5])
pp = lambda s: s["prefill_tok_s"]["mean"]
tg = lambda s: s["decode_tok_s"]["mean"]
print(f"{preset:<14} {dtype:<6} {pp(ref):10.1f} {pp(tuned):10.1f} {tg(ref):10.2f} {tg(tuned):10.2f} "
      f"{pp(tuned)/pp(ref):8.2f} {tg(tuned)/tg(ref):8.2f}")
PY
  done
done
