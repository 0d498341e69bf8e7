#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine: system packages, a virtualenv, c3po installed editable.
# Sourced by scripts/run-all.sh and scripts/test.sh; safe to run again (it only installs what is missing).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

APT_PACKAGES=(clang llvm libbpf-dev gcc libc6-dev graphviz iproute2 bpftool libclang-rt-14-dev)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  echo "bootstrap: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The P4 tools (p4c, BMv2) are not packaged for Debian: install them from ../shared/tools/p4/ when it sits beside
# this clone (CI and the project's machines), idempotently. Elsewhere the P4 target skips with an install hint.
p4_install="${C3PO_P4_TOOLS:-$here/../shared/tools/p4}/install.sh"
if [ -f "$p4_install" ]; then
  bash "$p4_install"
elif ! command -v p4c-bm2-ss >/dev/null 2>&1; then
  echo "bootstrap: p4c/BMv2 not found and no ../shared/tools/p4 here: the p4 target will be skipped (docs/targets/p4.md)"
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.c3po-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ third_party/p4runtime/pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing c3po and test dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  # P4Runtime's modules regenerated for protobuf's C runtime (third_party/p4runtime/README.md), then
  # p4runtime-shell without the protobuf < 3.21 pin it carries for PyPI's modules (pip notes the pin; harmless)
  .venv/bin/python -m pip install -q ./third_party/p4runtime
  .venv/bin/python -m pip install -q --no-deps "p4runtime-shell==0.0.6"
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
