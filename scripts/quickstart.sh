#!/usr/bin/env bash
# First contact: installs what is missing, builds the release binary, runs the quickstart
# sweep (synthetic Llama-3.2-1B, Q4_K, synthesized once into the cache) on this machine, and
# turns it into charts and a Markdown report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release
./target/release/llamaperf topology
dir="$(./target/release/llamaperf sweep scenarios/quickstart.toml)"
echo "quickstart results: $dir (summary.csv, runs.jsonl, tokens.csv, machine.json, plan.json)"
report="$(./target/release/llamaperf report "$dir")"
echo "quickstart report: $report (charts in $dir/charts)"
