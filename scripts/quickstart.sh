#!/usr/bin/env bash
# First contact: installs what is missing, builds the release binary, and measures one run of a
# synthetic Llama-3.2-1B (Q4_K weights, synthesized once into the cache) on every allowed CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release
./target/release/llamaperf run --model llama-3.2-1b --dtype q4_k \
  --prompt-tokens 128 --gen-tokens 32 --warmup 1 --repetitions 3
