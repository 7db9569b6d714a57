#!/usr/bin/env bash
# Engine torch against tuned and llama.cpp on one GGUF file: a sweep over every installed torch
# backend in bf16 and f32 (scripts/setup-torch.sh), then the report's software-gain table.
# usage: scripts/bench-torch.sh [MODEL.gguf] [CORES]   (default: the SmolLM2 test model, 2 cores)
# Environment: PROFILE (cargo profile of llamaperf, default release), OUT (results folder,
# default target/bench-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
cores="${2:-2}"
profile=${PROFILE:-release}
cargo build --profile "$profile" --quiet
bin="$PWD/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/llamaperf"
out="${OUT:-target/bench-torch}"
rm -rf "$out" && mkdir -p "$out"
cat > "$out/torch.toml" <<TOML
# engine torch beside tuned and llama.cpp (scripts/bench-torch.sh)
name = "bench-torch"
[defaults]
model = "$model"
cores = $cores
prompt_tokens = 128
gen_tokens = 32
repetitions = 5
warmup = 1
[matrix]
engine = ["tuned", "llama.cpp", "torch"]
torch_backend = ["eager", "compile", "ipex", "zentorch"]
torch_dtype = ["bf16", "f32"]
TOML
"$bin" sweep "$out/torch.toml" --out "$out/results"
"$bin" report "$out/results" --out "$out/report" >/dev/null
sed -n '/^## Software gain/,/^## /p' "$out/report/report.md" | sed '$d'
