#!/usr/bin/env bash
# The whole test suite: lint, types, and pytest (kernel, gcc and p4 tests included where the tools exist;
# with CI=true a missing tool is a failure, not a skip). Tests marked `campaign` (every program through p4c for
# its P4Info, the sanitized nic fuzz campaign) run in scripts/run-all.sh instead.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
export PATH="$here/.venv/bin:$PATH"
echo "== ruff"
ruff check c3po_compiler targets conformance dataplane tests benchmarks scripts
echo "== mypy"
mypy
echo "== pytest"
set +e
pytest -q -n 2 --durations=30 -m "not campaign" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
