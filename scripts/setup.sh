#!/usr/bin/env bash
# Installs what building and testing llamaperf needs on a Debian machine; idempotent:
# packages already present are not touched, so a second run does nothing.
set -euo pipefail

# cmake builds ggml (llama-server, crate llama-cpp-sys-2); libclang runs bindgen for its C API;
# chromium opens the HTML report in its test
packages=(pkg-config libhwloc-dev libudev-dev build-essential cmake libclang-dev python3 python3-pip
  ca-certificates chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3/pip and cmake may come from another installation (pyenv); only ask apt when absent.
if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in python3|python3-pip) ;; *) filtered+=("$p") ;; esac
  done
  missing=("${filtered[@]}")
fi
if command -v cmake >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do
    [ "$p" = cmake ] || filtered+=("$p")
  done
  missing=("${filtered[@]}")
fi

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install the Rust toolchain (https://rustup.rs), then run this again" >&2
  exit 1
fi
echo "setup: ok" >&2
