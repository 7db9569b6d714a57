#!/usr/bin/env bash
# CI regression gate: measures scenarios/ci-smoke.toml with this build and compares the results
# with a stored baseline of the same scenario (`llamaperf compare`).
#
#   scripts/ci-regression.sh BASELINE_DIR [OUT_DIR]
#
# BASELINE_DIR  a results folder of ci-smoke measured on the same machine (kind) from the main
#               branch, kept by the CI system (cache or artifact). If it does not exist yet,
#               this run becomes the baseline and the gate passes.
# OUT_DIR       where this run's results go [default: results/ci-smoke-<UTC timestamp>]; the
#               Markdown table for the pull-request comment is written to OUT_DIR/compare.md.
#
# Environment: LLAMAPERF_BIN (the binary, default: build target/release/llamaperf),
# THRESHOLD_PCT (default 5).
# Exit code: 0 no regression, 1 regression (or a run failed in the candidate), 2 usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 BASELINE_DIR [OUT_DIR]" >&2
    exit 2
fi
baseline="$1"
out="${2:-results/ci-smoke-$(date -u +%Y%m%dT%H%M%SZ)}"
threshold="${THRESHOLD_PCT:-5}"

if [[ -z "${LLAMAPERF_BIN:-}" ]]; then
    cargo build --release
    LLAMAPERF_BIN=target/release/llamaperf
fi

# A sweep whose runs fail still writes its folder (exit 1); compare reports the failures and
# fails the gate. Anything else (a bad scenario, an existing OUT_DIR) stops here.
set +e
"$LLAMAPERF_BIN" sweep scenarios/ci-smoke.toml --out "$out" >/dev/null
sweep_status=$?
set -e
if [[ $sweep_status -ne 0 && $sweep_status -ne 1 ]]; then
    echo "ci-regression: the sweep stopped with exit code $sweep_status" >&2
    exit "$sweep_status"
fi

if [[ ! -d "$baseline" ]]; then
    mkdir -p "$(dirname "$baseline")"
    cp -r "$out" "$baseline"
    echo "ci-regression: no baseline at $baseline yet; this run ($out) is now the baseline" >&2
    exit "$sweep_status"
fi

set +e
"$LLAMAPERF_BIN" compare "$baseline" "$out" --threshold "$threshold" --format md >"$out/compare.md"
status=$?
set -e
cat "$out/compare.md"
exit "$status"
