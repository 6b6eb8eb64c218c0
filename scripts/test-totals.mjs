#!/usr/bin/env node
// Reads vitest JSON reports and prints one plain line of their sum: `N passed, N failed`.
//
// Usage: node scripts/test-totals.mjs REPORT.json [VITEST_EXIT_STATUS] [REPORT.json VITEST_EXIT_STATUS]...
//
// Each report is read with the exit status of the vitest run that wrote it (scripts/test.sh passes
// the main suite's, then the cgroup v2 guest's). "failed" counts failed tests, plus each test file
// that failed without a failed test (it could not be loaded, or crashed outside a test), plus one
// per run that reported failure some other way (an unhandled error, a non-zero exit status) or
// wrote no report at all, so a broken run never reads as clean. Exits 1 when failed > 0.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 0) {
  console.error(
    'usage: node scripts/test-totals.mjs REPORT.json [VITEST_EXIT_STATUS] [REPORT.json VITEST_EXIT_STATUS]...',
  );
  process.exit(2);
}

/** The totals of one run: its report at `reportPath` and the exit status of the vitest that wrote it. */
function totals(reportPath, vitestStatus) {
  let report;
  try {
    const text = readFileSync(reportPath, 'utf8');
    report = text.trim() ? JSON.parse(text) : undefined;
  } catch (e) {
    console.error(`[test] no readable vitest report at ${reportPath}: ${e.message}`);
  }
  if (!report) return { passed: 0, failed: 1 };
  const passed = report.numPassedTests ?? 0;
  let failed = report.numFailedTests ?? 0;
  for (const file of report.testResults ?? []) {
    const failedTests = (file.assertionResults ?? []).filter((a) => a.status === 'failed').length;
    if (file.status === 'failed' && failedTests === 0) {
      console.error(`[test] test file failed outside any test: ${file.name}${file.message ? `\n${file.message}` : ''}`);
      failed += 1;
    }
  }
  if (failed === 0 && (report.success === false || vitestStatus !== 0)) {
    console.error(
      `[test] vitest reported failure (exit status ${vitestStatus}) with no failed test: see its output above`,
    );
    failed = 1;
  }
  return { passed, failed };
}

let passed = 0;
let failed = 0;
for (let i = 0; i < args.length; i += 2) {
  const run = totals(args[i], Number(args[i + 1] ?? '0') || 0);
  passed += run.passed;
  failed += run.failed;
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
