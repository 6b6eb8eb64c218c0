#!/usr/bin/env bash
# `npm run test:cgroup2`: runs, on a cgroup-v2-only kernel (run.sh's guest), the cgroup v2 smoke
# program and the integration tests that touch cgroups, resources, devices, pause and OOM, and the
# bridge network's (vitest.cgroup2.config.ts). Ends with one plain line, `N passed, N failed`, and
# exits non-zero when anything failed. Arguments are passed on to vitest.
#
# Settings: BERTH_CGROUP2_REPORT (a path: the vitest JSON report is copied there, for
# scripts/test.sh's totals), BERTH_CGROUP2_TIMEOUT (seconds for the whole guest, default 1200), and
# run.sh's BERTH_VM_* settings. vitest's cache (test durations, which order the files) is kept in
# $BERTH_VM_CACHE/vitest between runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [ ! -f dist/index.js ] || [ ! -f dist/zygote-main.js ]; then
  echo "[cgroup2] npm run build" >&2
  npm run --silent build </dev/null
fi

cache="${BERTH_VM_CACHE:-/var/cache/berth/cgroup2-vm}/vitest"
out="$(mktemp -d /tmp/berth-cgroup2-out.XXXXXX)"
mkdir -p "$cache"
trap 'rm -rf "$out"' EXIT

status=0
BERTH_VITEST_CACHE_DIR="$cache" bash scripts/cgroup2-vm/run.sh --timeout "${BERTH_CGROUP2_TIMEOUT:-1200}" --share "$out" --share "$cache" -- \
  npx vitest run --config vitest.cgroup2.config.ts --reporter=default --reporter=json --outputFile.json="$out/report.json" "$@" \
  || status=$?
[ -n "${BERTH_CGROUP2_REPORT:-}" ] && cp "$out/report.json" "$BERTH_CGROUP2_REPORT" 2>/dev/null || true
node scripts/test-totals.mjs "$out/report.json" "$status"
