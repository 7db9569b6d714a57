#!/usr/bin/env bash
# Decode deep into a context: the tuned engine (`run --depth D`, f16 KV cache) against
# llama-bench's `-d D` with and without its flash attention (f16 KV), on the same GGUF file,
# CPUs and thread count. Rounds alternate which engine goes first, as in bench-vs-llama-cpp.sh;
# the table gives each engine's median tokens/s and the median of the rounds' ratios.
#
# Usage: scripts/bench-depth.sh [MODEL]   (a preset, synthesized in DTYPE, or a GGUF file;
#        default llama-3.2-1b)
# Environment: DTYPE (q4_0), DEPTHS ("4096 16384 32768"), GEN (32), ROUNDS (3), THREADS (all
#              CPUs this process may use), PROFILE (cargo profile, default release).
# Columns: depth, then tg tokens/s of tuned, llama.cpp, their ratio, llama.cpp with flash
# attention and tuned's ratio to it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

model=${1:-llama-3.2-1b}
depths=${DEPTHS:-"4096 16384 32768"}
gen=${GEN:-32}
rounds=${ROUNDS:-3}
threads=${THREADS:-$(nproc)}
cpus="0-$((threads - 1))"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
fail() { cat "$1" >&2; exit 1; }

if [ -f "$model" ]; then
  dtype_flag=()
  gguf="$model"
else
  dtype_flag=(--dtype "${DTYPE:-q4_0}")
  gguf="$("$bin" model synth "$model" "${dtype_flag[@]}" 2>/dev/null)"
fi
echo "$gguf: threads $threads on cpus $cpus; tg$gen at each depth; $rounds rounds" >&2
printf '%-6s | %-8s %-8s %-5s | %-8s %-5s\n' depth tuned l.cpp ratio l.cpp-fa ratio
for depth in $depths; do
  for round in $(seq 1 "$rounds"); do
    ours() {
      # a 1-token prompt, then gen decode steps at the depth, as llama-bench's tg after -d
      "$bin" run --model "$model" "${dtype_flag[@]}" --depth "$depth" --prompt-tokens 1 \
        --gen-tokens $((gen + 1)) --cores "$cpus" --warmup 0 --repetitions 1 --counters none \
        --json >"$out/ours-$depth-$round.json" 2>"$out/ours.err" || fail "$out/ours.err"
    }
    theirs() {
      taskset -c "$cpus" "$bench" -m "$gguf" -t "$threads" -p 0 -n "$gen" -d "$depth" -r 1 \
        -fa off,on -o json >"$out/llama-$depth-$round.json" 2>"$out/llama.err" || fail "$out/llama.err"
    }
    if [ $((round % 2)) -eq 1 ]; then ours; theirs; else theirs; ours; fi
  done
  python3 - "$out" "$depth" "$rounds" <<'PY'
import json, statistics, sys
out, depth, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
median = statistics.median
rows = []
for r in range(1, rounds + 1):
    ours = json.load(open(f"{out}/ours-{depth}-{r}.json"))["record"]["summary"]["decode_tok_s"]["mean"]
    theirs = {t["flash_attn"] in (True, 1, "on", "enabled"): t["avg_ts"] for t in json.load(open(f"{out}/llama-{depth}-{r}.json"))}
    rows.append((ours, theirs[False], theirs[True]))
tuned, plain, fa = (median(r[i] for r in rows) for i in range(3))
ratio = lambda i: median(r[0] / r[i] for r in rows)
print(f"{depth:<6} | {tuned:8.2f} {plain:8.2f} {ratio(1):5.2f} | {fa:8.2f} {ratio(2):5.2f}", flush=True)
PY
done
