#!/usr/bin/env bash
# The test command: installs what is missing, fetches the real test model, builds (or finds
# cached) llama.cpp's llama-server for the openai engine's real-server test, runs every test,
# then the fault suite (about 2 minutes) and the Slurm test (a one-node Slurm cluster runs a
# sweep as a job array) with the binary the tests built.
#
# --with-torch also installs the PyTorch environments of engine torch (scripts/setup-torch.sh:
# several GB from PyPI, once) so that its tests run instead of reporting themselves skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
with_torch=""
for arg in "$@"; do
  case "$arg" in
    --with-torch) with_torch=1 ;;
    *) echo "usage: scripts/test.sh [--with-torch]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
if [ -n "$with_torch" ]; then
  LLAMAPERF_TORCH_ENVS="${LLAMAPERF_TORCH_ENVS:-${LLAMAPERF_CACHE:-$HOME/.cache/llamaperf}/torch}"
  export LLAMAPERF_TORCH_ENVS
  bash scripts/setup-torch.sh
fi
bash scripts/fetch-test-model.sh
LLAMAPERF_LLAMA_SERVER="$(bash scripts/build-llama-server.sh)"
export LLAMAPERF_LLAMA_SERVER
cargo test --workspace --all-targets 2>&1
LLAMAPERF="${CARGO_TARGET_DIR:-target}/debug/llamaperf" bash scripts/faults.sh
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo bash scripts/test-slurm.sh "${CARGO_TARGET_DIR:-target}/debug/llamaperf"
