#!/usr/bin/env bash
# Creates the Python environments of the torch engine from PyPI, one per backend family:
#   ipex      torch 2.8.0 + intel-extension-for-pytorch 2.8.0 (backends eager, compile, ipex)
#   zentorch  torch 2.14.1 + zentorch 2.14.0.1 (backend zentorch)
# in ${LLAMAPERF_TORCH_ENVS:-${LLAMAPERF_CACHE:-$HOME/.cache/llamaperf}/torch}/<family>, every package pinned.
# Usage: scripts/setup-torch.sh [ipex|zentorch]   (no argument: both)
# Idempotent: a finished environment is left alone; a half-made one is removed and rebuilt.
# PyPI's Linux torch is the CUDA build: its CPU code links CUDA libraries, so torch is installed
# without its dependency list, plus only the nvidia-* wheels `import torch` loads (about 2.5 GB),
# never CUDA's compilers, solvers or triton. Downloads go through pip's cache.
set -euo pipefail

# Packages of the ipex family: torch 2.8.0's CPU needs, transformers 4.51.3 (the release
# ipex.llm.optimize is validated with; 5.x fails importing beam_search), GGUF loading.
ipex_packages=(
  torch==2.8.0 intel-extension-for-pytorch==2.8.0
  nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-cupti-cu12==12.8.90 nvidia-cublas-cu12==12.8.4.1
  nvidia-cudnn-cu12==9.10.2.21 nvidia-cufft-cu12==11.3.3.83 nvidia-cufile-cu12==1.13.1.3
  nvidia-curand-cu12==10.3.9.90 nvidia-cusparse-cu12==12.5.8.93 nvidia-cusparselt-cu12==0.7.1
  nvidia-nccl-cu12==2.27.3 nvidia-nvjitlink-cu12==12.8.93
)
# Packages of the zentorch family: zentorch 2.14.0.1 loads only with torch 2.14; torch 2.14 is
# built for CUDA 13, whose wheels are named without the -cu12 suffix and also need nvrtc and nvshmem.
zentorch_packages=(
  torch==2.14.1 zentorch==2.14.0.1 Deprecated==1.3.1 wrapt==2.5.2
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 nvidia-cublas==13.1.1.3
  nvidia-cudnn-cu13==9.24.0.43 nvidia-cufft==12.0.0.61 nvidia-cufile==1.15.1.6
  nvidia-curand==10.4.0.35 nvidia-cusparse==12.6.3.3 nvidia-cusparselt-cu13==0.8.1
  nvidia-nccl-cu13==2.30.7 nvidia-nvjitlink==13.0.88 nvidia-cuda-nvrtc==13.0.88
  nvidia-nvshmem-cu13==3.4.5
)
# Packages both families share: transformers with GGUF loading (gguf, accelerate) and the
# dependencies of torch and transformers, pinned to the versions tested together.
common_packages=(
  setuptools==84.2.1
  transformers==4.51.3 tokenizers==0.21.4 huggingface_hub==0.36.2 hf-xet==1.8.0 safetensors==0.8.0
  accelerate==1.16.0 gguf==0.19.0 numpy==2.4.6 psutil==7.2.2 packaging==26.4 PyYAML==6.0.4
  regex==2026.12.2 requests==2.34.2 certifi==2026.10.19.post1 charset-normalizer==3.5.3 idna==3.21
  urllib3==2.8.0 tqdm==4.70.1 filelock==4.3.2 fsspec==2026.9.0 Jinja2==3.1.6 MarkupSafe==3.0.4
  mpmath==1.3.0 networkx==3.6.1 sympy==1.14.0 typing_extensions==4.16.0
)

families=("$@")
[ "${#families[@]}" -gt 0 ] || families=(ipex zentorch)
for family in "${families[@]}"; do
  case "$family" in
    ipex | zentorch) ;;
    *)
      echo "setup-torch: unknown family '$family': expected ipex or zentorch" >&2
      exit 2
      ;;
  esac
done

# Debian's python3 makes virtual environments only with python3-venv (ensurepip) installed.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup-torch: installing python3-venv" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

root="${LLAMAPERF_TORCH_ENVS:-${LLAMAPERF_CACHE:-$HOME/.cache/llamaperf}/torch}"
mkdir -p "$root"

# Makes one family's environment unless a finished one with the same package list is there.
setup_family() {
  local family="$1" env="$root/$1" extension
  local -n family_packages="${family}_packages"
  local packages=("${common_packages[@]}" "${family_packages[@]}")
  local stamp="$env/llamaperf-packages.txt"
  case "$family" in
    ipex) extension=intel_extension_for_pytorch ;;
    zentorch) extension=zentorch ;;
  esac
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${packages[*]}" ]; then
    echo "setup-torch: $family already installed in $env" >&2
    echo "$env/bin/python"
    return
  fi
  if [ -e "$env" ]; then
    echo "setup-torch: removing the unfinished or outdated environment $env" >&2
    rm -rf "$env"
  fi
  local start=$SECONDS
  echo "setup-torch: installing $family into $env (about 3 GB of downloads)" >&2
  python3 -m venv "$env"
  # The pip that made these environments (Debian's own is older).
  "$env/bin/python" -m pip install --quiet --disable-pip-version-check pip==26.3
  "$env/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${packages[@]}"
  "$env/bin/python" -c "import torch, transformers, gguf, accelerate, $extension" 2>/dev/null || {
    echo "setup-torch: $env/bin/python cannot import torch, transformers and $extension" >&2
    exit 1
  }
  echo "${packages[*]}" >"$stamp"
  echo "setup-torch: $family installed in $env ($(du -sh "$env" | cut -f1), $((SECONDS - start)) s)" >&2
  echo "$env/bin/python"
}

for family in "${families[@]}"; do
  setup_family "$family"
done
