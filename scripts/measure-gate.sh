#!/usr/bin/env bash
# Measures the regression gate's error rates on this host (docs/performance.md, "Regression
# gate"): how often `compare` fails two groups of sweeps of the SAME build (A/A false alarms),
# and how often it catches a candidate 20% slower.
#
#   scripts/measure-gate.sh OUT_DIR
#
# 1. Runs SWEEPS identical sweeps of scenarios/ci-smoke.toml with one binary, one after the
#    other, into OUT_DIR/sweeps/NN (folders already there are kept, and only the missing ones
#    are measured, so a second call only evaluates; the sweeps' progress goes to
#    OUT_DIR/sweeps.log).
# 2. A/A: every window of 2 x ROUNDS consecutive sweeps is split into base and candidate the
#    way scripts/ci-regression.sh interleaves the builds (PATTERN abba: base, candidate,
#    candidate, base, ...; or abab), and `compare --base ... --candidate ...` runs in both
#    orientations: windows x 2 orderings of identical sweeps. Every exit code 1 is a false
#    alarm.
# 3. 20% slower: the same orderings, with copies of the candidate's folders in which every
#    time of every repetition (TTFT, each decode step, TPOT, end-to-end) is multiplied by
#    SLOWDOWN (default 1.2) and every throughput divided by it (jq rewrites runs.jsonl; the
#    summaries too). Every exit code 1 is a detection.
#    Steps 2 and 3 also run with --fail-on-inconclusive: how often a gate that also fails on
#    an undecided metric stops an unchanged build, and catches the slower one.
# 4. For contrast, the single-folder form (`compare A B`) over every pair of consecutive
#    sweeps, both ways: it tests over the repetitions of one process per side.
#
# Environment: LLAMAPERF_BIN (default target/debug/llamaperf; engine crates are optimized in
# the dev profile too), SWEEPS (default 24), ROUNDS (base+candidate pairs per comparison,
# default 5), PATTERN (abba or abab, default abba), SLOWDOWN (default 1.2), THRESHOLD_PCT
# (default 5), ALPHA (default 0.01, as the CI job).
# Output: one table row per kind of comparison (Markdown) on stdout: orderings, how many exited
# 1, and how many exited 1 with --fail-on-inconclusive; every comparison's exit code and
# summary in OUT_DIR/verdicts.tsv. Needs jq.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
out="$1"
bin="${LLAMAPERF_BIN:-target/debug/llamaperf}"
sweeps="${SWEEPS:-24}"
rounds="${ROUNDS:-5}"
slowdown="${SLOWDOWN:-1.2}"
threshold="${THRESHOLD_PCT:-5}"
alpha="${ALPHA:-0.01}"
pattern="${PATTERN:-abba}"
if ! [[ "$slowdown" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "measure-gate: SLOWDOWN=$slowdown: must be a factor such as 1.2 (times x 1.2)" >&2
    exit 2
fi
if [[ "$pattern" != abba && "$pattern" != abab ]]; then
    echo "measure-gate: PATTERN=$pattern: must be abba or abab" >&2
    exit 2
fi
if ((sweeps < 2 * rounds)); then
    echo "measure-gate: SWEEPS=$sweeps must be at least 2 x ROUNDS=$((2 * rounds))" >&2
    exit 2
fi
command -v jq >/dev/null || {
    echo "measure-gate: needs jq" >&2
    exit 2
}
slow_dir="$out/slow-x$slowdown"
mkdir -p "$out/sweeps" "$slow_dir"

for ((i = 1; i <= sweeps; i++)); do
    dir="$out/sweeps/$(printf '%02d' "$i")"
    [[ -d "$dir" ]] || "$bin" sweep scenarios/ci-smoke.toml --out "$dir" >/dev/null 2>>"$out/sweeps.log"
done
mapfile -t dirs < <(find "$out/sweeps" -mindepth 1 -maxdepth 1 -type d | sort | head -n "$sweeps")

# A copy of folder $1 whose timings are $slowdown times longer, in $slow_dir (kept for the
# next call with the same SLOWDOWN).
slowed() {
    local to
    to="$slow_dir/$(basename "$1")"
    if [[ ! -d "$to" ]]; then
        cp -r "$1" "$to"
        jq -c --argjson f "$slowdown" '
            def times: with_entries(if (.value | type) == "number" and .key != "samples" and .key != "cv" then .value *= $f else . end);
            def rates: . as $s | with_entries(if (.value | type) == "number" and .key != "cv" then .value /= $f else . end)
                | .min = ($s.max / $f) | .max = ($s.min / $f);
            if .status == "ok" then
                .record.repetitions |= map(
                    .decode_steps_ms |= map(. * $f)
                    | .metrics |= with_entries(
                        if (.key | endswith("_ms")) then .value *= $f
                        elif (.key | endswith("_tok_s")) then .value /= $f
                        else . end))
                | .record.summary |= with_entries(
                    if (.key | endswith("_ms")) then .value |= times
                    elif (.key | endswith("_tok_s")) then .value |= rates
                    else . end)
            else . end' "$1/runs.jsonl" >"$to/runs.jsonl"
    fi
    echo "$to"
}

: >"$out/verdicts.tsv"
# compare KIND BASE... -- CANDIDATE...: records the exit code; prints it.
run_compare() {
    local kind="$1" status=0 summary
    shift
    summary=$("$bin" compare "$@" --threshold "$threshold" --alpha "$alpha" 2>&1 >/dev/null | tail -n 1) || status=$?
    printf '%s\t%s\t%s\n' "$kind" "$status" "$summary" >>"$out/verdicts.tsv"
    echo "$status"
}

declare -A total=() failed=()
count() {
    total[$1]=$((${total[$1]:-0} + 1))
    if [[ "$2" -eq 1 ]]; then failed[$1]=$((${failed[$1]:-0} + 1)); fi
}

n=${#dirs[@]}
for ((start = 0; start + 2 * rounds <= n; start++)); do
    odd=()
    even=()
    for ((k = 0; k < rounds; k++)); do
        first="${dirs[start + 2 * k]}" second="${dirs[start + 2 * k + 1]}"
        if [[ "$pattern" == abba ]] && ((k % 2 == 1)); then
            odd+=("$second") even+=("$first")
        else
            odd+=("$first") even+=("$second")
        fi
    done
    for orientation in 0 1; do
        if ((orientation == 0)); then
            base=("${odd[@]}") cand=("${even[@]}")
        else
            base=("${even[@]}") cand=("${odd[@]}")
        fi
        count aa "$(run_compare aa --base "${base[@]}" --candidate "${cand[@]}")"
        count aa-strict "$(run_compare aa-strict --base "${base[@]}" --candidate "${cand[@]}" --fail-on-inconclusive)"
        slow=()
        for c in "${cand[@]}"; do slow+=("$(slowed "$c")"); done
        count slow "$(run_compare slow --base "${base[@]}" --candidate "${slow[@]}")"
        count slow-strict "$(run_compare slow-strict --base "${base[@]}" --candidate "${slow[@]}" --fail-on-inconclusive)"
    done
done
for ((i = 0; i + 1 < n; i++)); do
    count single "$(run_compare single "${dirs[i]}" "${dirs[i + 1]}")"
    count single "$(run_compare single "${dirs[i + 1]}" "${dirs[i]}")"
done

echo "| comparison | orderings | exit 1 | exit 1 with --fail-on-inconclusive |"
echo "|---|---:|---:|---:|"
echo "| A/A, $rounds + $rounds folders (${pattern^^} windows of $n sweeps), alpha $alpha | ${total[aa]} | ${failed[aa]:-0} | ${failed[aa-strict]:-0} |"
echo "| candidate folders ${slowdown}x slower, the same | ${total[slow]} | ${failed[slow]:-0} | ${failed[slow-strict]:-0} |"
echo "| A/A, one folder per side (consecutive sweeps, both ways), alpha $alpha | ${total[single]} | ${failed[single]:-0} | – |"
