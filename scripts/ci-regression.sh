#!/usr/bin/env bash
# CI regression gate: measures scenarios/ci-smoke.toml with the base build and the candidate
# build in interleaved rounds, each sweep a fresh set of worker processes, then compares all
# the base's folders with all the candidate's (`llamaperf compare --base DIR... --candidate
# DIR...`). Each folder is one sample per run and metric, so the verdicts are judged against
# the noise between processes. The rounds alternate which build goes first (base, candidate,
# candidate, base, base, candidate, ...: ABBA), so that the host's changing load lands on both
# sides, also when it comes and goes with a period of two sweeps, which strict ABAB turns into
# a difference between the builds (docs/performance.md, "Regression gate").
#
#   scripts/ci-regression.sh BASE_BIN [OUT_DIR]
#
# BASE_BIN  the llamaperf binary of the baseline (e.g. the main branch, built by the CI job).
# OUT_DIR   where the sweeps go, OUT_DIR/base-NN and OUT_DIR/candidate-NN [default:
#           results/ci-gate-<UTC timestamp>]; the Markdown table for the pull-request comment
#           is written to OUT_DIR/compare.md.
#
# Environment: LLAMAPERF_BIN (the candidate binary, default: build target/release/llamaperf),
# ROUNDS (base+candidate pairs, at least 2, default 5), THRESHOLD_PCT (default 5), ALPHA
# (significance level after the Benjamini-Hochberg adjustment, default 0.01),
# FAIL_ON_INCONCLUSIVE (1: an inconclusive metric fails the gate too, default 0),
# SCENARIO (default scenarios/ci-smoke.toml).
# Exit code: 0 no regression, 1 regression (or a run failed in the candidate, or with
# FAIL_ON_INCONCLUSIVE=1 an inconclusive metric), 2 usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 BASE_BIN [OUT_DIR]" >&2
    exit 2
fi
base_bin="$1"
out="${2:-results/ci-gate-$(date -u +%Y%m%dT%H%M%SZ)}"
rounds="${ROUNDS:-5}"
threshold="${THRESHOLD_PCT:-5}"
alpha="${ALPHA:-0.01}"
scenario="${SCENARIO:-scenarios/ci-smoke.toml}"
if [[ ! -x "$base_bin" ]]; then
    echo "ci-regression: BASE_BIN $base_bin is not an executable file" >&2
    exit 2
fi
if ! [[ "$rounds" =~ ^[0-9]+$ ]] || ((rounds < 2)); then
    echo "ci-regression: ROUNDS=$rounds: must be a whole number >= 2 (the noise between processes needs 2 sweeps per side)" >&2
    exit 2
fi
extra=()
case "${FAIL_ON_INCONCLUSIVE:-0}" in
    0) ;;
    1) extra+=(--fail-on-inconclusive) ;;
    *)
        echo "ci-regression: FAIL_ON_INCONCLUSIVE=$FAIL_ON_INCONCLUSIVE: must be 0 or 1" >&2
        exit 2
        ;;
esac

if [[ -z "${LLAMAPERF_BIN:-}" ]]; then
    cargo build --release
    LLAMAPERF_BIN=target/release/llamaperf
fi
mkdir -p "$out"

# A sweep whose runs fail still writes its folder (exit 1); compare reports the failures (a
# failure in the candidate fails the gate). Anything else (a bad scenario, an existing folder)
# stops here.
sweep() {
    local bin="$1" dir="$2" status=0
    "$bin" sweep "$scenario" --out "$dir" >/dev/null || status=$?
    if [[ $status -ne 0 && $status -ne 1 ]]; then
        echo "ci-regression: the sweep into $dir stopped with exit code $status" >&2
        exit "$status"
    fi
}

bases=()
candidates=()
for ((i = 1; i <= rounds; i++)); do
    n=$(printf '%02d' "$i")
    if ((i % 2 == 1)); then
        sweep "$base_bin" "$out/base-$n"
        sweep "$LLAMAPERF_BIN" "$out/candidate-$n"
    else
        sweep "$LLAMAPERF_BIN" "$out/candidate-$n"
        sweep "$base_bin" "$out/base-$n"
    fi
    bases+=("$out/base-$n")
    candidates+=("$out/candidate-$n")
done

status=0
"$LLAMAPERF_BIN" compare --base "${bases[@]}" --candidate "${candidates[@]}" \
    --threshold "$threshold" --alpha "$alpha" "${extra[@]}" --format md >"$out/compare.md" || status=$?
cat "$out/compare.md"
exit "$status"
