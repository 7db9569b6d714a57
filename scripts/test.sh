#!/usr/bin/env bash
# The test command: installs what is missing, fetches the real test model, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch-test-model.sh
cargo test --all-targets 2>&1
