#!/usr/bin/env bash
# Runs berth's whole test suite on this machine, as root: installs what it needs
# (scripts/install-deps.sh), builds the package, then runs vitest with its default reporter plus a
# JSON report, and ends with one plain line of totals:
#
#   N passed, N failed
#
# The totals include the cgroup v2 guest's run (scripts/cgroup2-vm/test.sh), which runs beside the
# main suite when no arguments are given (BERTH_SKIP_CGROUP2=1 skips it, BERTH_CGROUP2_SERIAL=1
# runs it after).
# Exits non-zero when a test failed, a test file could not run, or the type check, the API docs, the
# format check (Prettier), the lint (ESLint) or the build failed. Arguments are passed on to vitest
# (e.g. `bash scripts/test.sh test/unit`). BERTH_SKIP_BUILD=1 skips the build (when dist/ is known
# to be current).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A setup or build failure still ends with the totals line, counting as one failure.
fail_early() {
  echo "[test] $1 failed; no tests were run" >&2
  echo "0 passed, 1 failed"
  exit 1
}

bash scripts/install-deps.sh || fail_early "scripts/install-deps.sh"

echo "[test] npm run typecheck && npm run docs" >&2
npm run --silent typecheck </dev/null || fail_early "the type check (npm run typecheck)"
npm run --silent docs </dev/null >/dev/null || fail_early "the API docs (npm run docs: typedoc treats warnings as errors)"

echo "[test] npm run format:check && npm run lint" >&2
npm run --silent format:check </dev/null || fail_early "the format check (npm run format:check; npm run format fixes it)"
npm run --silent lint </dev/null || fail_early "the lint (npm run lint; npm run lint:fix fixes some)"

if [ "${BERTH_SKIP_BUILD:-0}" = 1 ]; then
  echo "[test] BERTH_SKIP_BUILD=1: not building" >&2
else
  echo "[test] npm run build" >&2
  npm run --silent build </dev/null || fail_early "the build (npm run build)"
fi

report="$(mktemp "${TMPDIR:-/tmp}/berth-vitest-XXXXXX.json")"
trap 'rm -f "$report"' EXIT

# The cgroup v2 job: the cgroup tests again on a cgroup-v2-only kernel, in a qemu guest
# (scripts/cgroup2-vm; about 6 minutes under software emulation). It starts first and runs beside
# the main suite, whose containers mostly wait on the kernel, so the two share the cores; its output
# is printed after the main suite's. Skipped when test files were named, or with
# BERTH_SKIP_CGROUP2=1; BERTH_CGROUP2_SERIAL=1 runs it after the main suite instead.
guest=0
if [ $# -eq 0 ] && [ "${BERTH_SKIP_CGROUP2:-0}" != 1 ]; then
  guest=1
  cgroup2_report="$(mktemp "${TMPDIR:-/tmp}/berth-vitest-cgroup2-XXXXXX.json")"
  cgroup2_log="$(mktemp "${TMPDIR:-/tmp}/berth-cgroup2-log-XXXXXX")"
  trap 'rm -f "$report" "$cgroup2_report" "$cgroup2_log" "$cgroup2_log.status"' EXIT
  run_guest() {
    local s=0
    BERTH_CGROUP2_REPORT="$cgroup2_report" bash scripts/cgroup2-vm/test.sh </dev/null >"$cgroup2_log" 2>&1 || s=$?
    echo "$s" >"$cgroup2_log.status"
  }
  if [ "${BERTH_CGROUP2_SERIAL:-0}" != 1 ]; then
    echo "[test] the cgroup v2 guest (npm run test:cgroup2) starts beside the main suite; its output follows it" >&2
    run_guest &
    guest_pid=$!
  fi
fi

status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" </dev/null || status=$?

reports=("$report" "$status")

if [ "$guest" = 1 ]; then
  if [ -n "${guest_pid:-}" ]; then
    wait "$guest_pid" || true
  else
    echo "[test] the cgroup v2 guest: npm run test:cgroup2" >&2
    run_guest
  fi
  cat "$cgroup2_log"
  reports+=("$cgroup2_report" "$(cat "$cgroup2_log.status" 2>/dev/null || echo 1)")
fi

# Prints the totals line last and fails when anything failed (or vitest itself did).
node scripts/test-totals.mjs "${reports[@]}"
