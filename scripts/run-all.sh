#!/usr/bin/env bash
# The main job, end to end: for every example, check it, draw its parse graph, build it for every target, and
# run conformance (generated vectors + fuzz) of every target against the reference interpreter; then the
# standard conformance suite. Outputs land in build/ (reports in build/reports/<example>/report.html).
#   FUZZ=N   fuzzed packets per example and per suite program (default 10000, what issues 4 and 5 ask for)
#   TARGETS  targets to compare (default ref,xdp,nic,p4; p4 is skipped with a notice without p4c/BMv2)
#   C3PO_NIC_SANITIZE=1  run the nic column under ASan/UBSan (its harness); the default under CI=true, where an
#            out-of-bounds read the native build gets away with must fail the job
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
export PATH="$here/.venv/bin:$PATH"
FUZZ="${FUZZ:-10000}"
TARGETS="${TARGETS:-ref,xdp,nic,p4}"
if [ "${CI:-}" = "true" ]; then export C3PO_NIC_SANITIZE="${C3PO_NIC_SANITIZE:-1}"; fi
mkdir -p build/reports
# One compile cache for this run (docs/getting-started.md, C3PO_CACHE_DIR): the conformance drivers reuse what
# `c3po build` compiled (p4c's run of each example); each program is still compiled once per run.
if [ -z "${C3PO_CACHE_DIR:-}" ]; then
  C3PO_CACHE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/c3po-run-all-cache.XXXXXX")"
  export C3PO_CACHE_DIR
  trap 'rm -rf "$C3PO_CACHE_DIR"' EXIT
fi
status=0
for spec in spec/examples/*.yaml; do
  name="$(basename "$spec" .yaml)"
  echo "== $name"
  c3po check "$spec" || { status=1; continue; }
  c3po graph "$spec" -o "build/$name.svg"
  c3po build "$spec" --target xdp,nic,p4 -o "build/$name" || status=1
  set +e
  c3po conformance run "$spec" --targets "$TARGETS" --gen --fuzz "$FUZZ" --seed 1 \
       --report "build/reports/$name" -q
  rc=$?
  set -e
  # 2 means a requested target could not run here (e.g. p4 without p4c): reported above, not a mismatch.
  if [ "$rc" -eq 1 ]; then status=1; fi
done
echo "== standard conformance suite"
set +e
c3po conformance suite --targets "$TARGETS" --fuzz "$FUZZ" --seed 1 --report build/reports/suite -q
rc=$?
set -e
if [ "$rc" -eq 1 ]; then status=1; fi
echo "== campaigns (the tests marked campaign: too long for the test suite)"
pytest -q -n 2 -m campaign -p no:cacheprovider || status=1
echo
if [ "$status" -eq 0 ]; then echo "run-all: every example checked, built and conformant"; else echo "run-all: FAILURES above"; fi
exit "$status"
