#!/usr/bin/env bash
# The tuned engine against llama.cpp on the same GGUF files, pinned to the same CPUs with the
# same thread count, in one session: llama-bench for prefill and batch-1 decode,
# llama-batched-bench for batch-8 decode. llamaperf's own `--engine llama.cpp` (llama.cpp in its
# worker, built by cargo) runs beside them: its prefill and decode tokens/s against
# llama-bench's check that the worker measures llama.cpp as llama.cpp's own tool does.
#
# A shared host's speed drifts by tens of percent within minutes, so the two engines take turns:
# each round measures ours and llama.cpp's back to back (ours first in odd rounds, llama.cpp's
# first in even ones), and the table gives the median of each engine's rounds and the median of
# the rounds' ratios. Decode's share of the memory bandwidth is given twice: against the read
# bandwidth calibrated just before and just after the round (`llamaperf calibrate`, the mean of
# the two; both engines), and, for ours, against a pure read after each decode step of a run of its
# own (`run --read-probe`, the median share), which the drift does not blur.
#
# llama-bench and llama-batched-bench are built once from the llama-cpp-python sdist (PyPI) into
# .peers/ (git-ignored); nothing of llama.cpp is committed.
#
# Usage: scripts/bench-vs-llama-cpp.sh [MODEL...]   (a preset, or a GGUF file; default
#        llama-3.2-1b). A preset is synthesized in each of DTYPES; a file keeps its own types.
# Environment: DTYPES (default "q4_0 q4_1 q8_0 q4_k f16 bf16 f32"), PROMPT (128), LONG_PROMPT
#              (512), GEN (32), ROUNDS (3), THREADS (all CPUs this process may use),
#              PROFILE (cargo profile of llamaperf, default release; dev reuses the test build),
#              LLAMA_CPP_CFLAGS (extra compiler flags for llama.cpp, built into a folder of their
#              own; "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" leaves out its AMX kernels, which
#              end in SIGILL at their first tilezero on some KVM guests that list AMX).
# Columns: prefill tokens/s at both prompt lengths, batch-1 decode tokens/s and batch-8 decode
# tokens/s (all sequences, 16-token prompts), ours then llama.cpp's then the median ratio; batch-1
# decode's GB/s of weights as a share of the calibrated read bandwidth, ours and llama.cpp's; ours
# as a share of the reads after its steps; then `--engine llama.cpp`'s prefill (short prompt)
# and batch-1 decode tokens/s, each with llama-bench's and the median ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

models=("$@")
[ "${#models[@]}" -gt 0 ] || models=(llama-3.2-1b)
dtypes=${DTYPES:-"q4_0 q4_1 q8_0 q4_k f16 bf16 f32"}
threads=${THREADS:-$(nproc)}
cpus="0-$((threads - 1))"
prompt=${PROMPT:-128}
long_prompt=${LONG_PROMPT:-512}
gen=${GEN:-32}
rounds=${ROUNDS:-3}
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

fail() { cat "$1" >&2; exit 1; }
ours() { # output name, then run flags
  local name=$1; shift
  "$bin" run --model "$model" "${dtype_flag[@]}" "$@" --cores "$cpus" --warmup 1 --repetitions 1 \
    --counters none --json >"$out/$name.json" 2>"$out/$name.err" || fail "$out/$name.err"
}
calibrate() { # output name
  "$bin" calibrate --cores "$threads" --dtypes q4_0 --json >"$out/$1.json" 2>"$out/$1.err" \
    || fail "$out/$1.err"
}
theirs() { # round
  taskset -c "$cpus" "$bench" -m "$gguf" -t "$threads" -p "$prompt,$long_prompt" -n "$gen" -r 1 \
    -o json >"$out/llama-$1.json" 2>"$out/llama.err" || fail "$out/llama.err"
  taskset -c "$cpus" "$batched" -m "$gguf" -t "$threads" -c $((8 * (16 + gen))) -b 512 -ub 512 \
    -npp 16 -ntg "$gen" -npl 8 --output-format jsonl >"$out/batched-$1.jsonl" 2>"$out/batched.err" \
    || fail "$out/batched.err"
}

echo "llama.cpp: $build" >&2
echo "threads $threads on cpus $cpus; pp$prompt, pp$long_prompt, tg$gen at batch 1 and 8; $rounds rounds" >&2
printf '%-13s %-5s | %-21s | %-21s | %-21s | %-21s | %5s %5s | %5s | %-21s | %-21s\n' model dtype \
  "pp$prompt ours/l.cpp" "pp$long_prompt ours/l.cpp" "tg ours/l.cpp" "tg b8 ours/l.cpp" \
  "%cal" "l.cal" "%read" "pp$prompt engine/bench" "tg engine/bench"
for model in "${models[@]}"; do
  if [ -f "$model" ]; then
    model_dtypes=file
  else
    model_dtypes=$dtypes
  fi
  for dtype in $model_dtypes; do
    if [ "$dtype" = file ]; then
      dtype_flag=()
      gguf="$model"
    else
      dtype_flag=(--dtype "$dtype")
      gguf="$("$bin" model synth "$model" --dtype "$dtype" 2>/dev/null)"
    fi
    calibrate calibration-0
    for round in $(seq 1 "$rounds"); do
      ours_round() {
        ours "short-$round" --prompt-tokens "$prompt" --gen-tokens "$gen"
        ours "long-$round" --prompt-tokens "$long_prompt" --gen-tokens 2
        ours "batch-$round" --batch 8 --prompt-tokens 16 --gen-tokens "$gen"
        ours "probe-$round" --prompt-tokens "$prompt" --gen-tokens "$gen" --read-probe
        ours "engine-$round" --engine llama.cpp --prompt-tokens "$prompt" --gen-tokens "$gen"
      }
      if [ $((round % 2)) -eq 1 ]; then ours_round; theirs "$round"; else theirs "$round"; ours_round; fi
      calibrate "calibration-$round"
    done
    python3 - "$model" "$dtype" "$out" "$prompt" "$long_prompt" "$rounds" <<'PY'
import json, os, statistics, sys
model, dtype, out = sys.argv[1], sys.argv[2], sys.argv[3]
prompt, long_prompt, rounds = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
load = lambda name: json.load(open(f"{out}/{name}.json"))
median = statistics.median
read_gb_s = lambda name: next(b["read_gb_s"] for b in load(name)["bandwidth"] if b["scope"] == "machine")
rows = []
for r in range(1, rounds + 1):
    short, long, batch, probe, engine = (load(f"{n}-{r}")["record"] for n in ("short", "long", "batch", "probe", "engine"))
    llama = load(f"llama-{r}")
    batched = [json.loads(l) for l in open(f"{out}/batched-{r}.jsonl") if l.startswith("{")][-1]
    lpp = lambda n: next(t["avg_ts"] for t in llama if t["n_prompt"] == n and t["n_gen"] == 0)
    ltg = next(t["avg_ts"] for t in llama if t["n_gen"] > 0 and t["n_prompt"] == 0)
    tok_s = lambda rec, key: rec["summary"][key]["mean"]
    bw = (read_gb_s(f"calibration-{r - 1}") + read_gb_s(f"calibration-{r}")) / 2
    weights = short["model"]["weight_bytes"] / 1e9
    rows.append(dict(
        dtype=short["model"]["dtype"] if dtype == "file" else dtype,
        pp=(tok_s(short, "prefill_tok_s"), lpp(prompt)),
        pp_long=(tok_s(long, "prefill_tok_s"), lpp(long_prompt)),
        tg=(tok_s(short, "decode_tok_s"), ltg),
        tg8=(tok_s(batch, "decode_tok_s"), batched["speed_tg"]),
        cal=(100 * tok_s(short, "decode_tok_s") * weights / bw, 100 * ltg * weights / bw),
        read=probe["summary"]["read_share"]["p50_pct"],
        engine_pp=(tok_s(engine, "prefill_tok_s"), lpp(prompt)),
        engine_tg=(tok_s(engine, "decode_tok_s"), ltg),
    ))
def cell(key):
    ours, theirs = median(r[key][0] for r in rows), median(r[key][1] for r in rows)
    ratio = median(r[key][0] / r[key][1] for r in rows)
    return f"{ours:7.1f} {theirs:7.1f} {ratio:5.2f}"
name = os.path.basename(model)[:13]
print(f"{name:<13} {rows[0]['dtype']:<5} | {cell('pp')} | {cell('pp_long')} | {cell('tg')} | "
      f"{cell('tg8')} | {median(r['cal'][0] for r in rows):4.0f}% {median(r['cal'][1] for r in rows):4.0f}% | "
      f"{median(r['read'] for r in rows):4.0f}% | {cell('engine_pp')} | {cell('engine_tg')}", flush=True)
PY
  done
done
