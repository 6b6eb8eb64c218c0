#!/usr/bin/env node
// Reads a vitest JSON report and prints one plain line: `N passed, N failed`.
//
// Usage: node scripts/test-totals.mjs REPORT.json [VITEST_EXIT_STATUS]
//
// "failed" counts failed tests, plus each test file that failed without a failed test (it could
// not be loaded, or crashed outside a test), plus one when vitest reported failure some other way
// (an unhandled error, a non-zero exit status) or wrote no report at all, so a broken run never
// reads as clean. Exits 1 when failed > 0.
import { readFileSync } from 'node:fs';

const [reportPath, statusArg = '0'] = process.argv.slice(2);
if (!reportPath) {
  console.error('usage: node scripts/test-totals.mjs REPORT.json [VITEST_EXIT_STATUS]');
  process.exit(2);
}
const vitestStatus = Number(statusArg) || 0;

let report;
try {
  const text = readFileSync(reportPath, 'utf8');
  report = text.trim() ? JSON.parse(text) : undefined;
} catch (e) {
  console.error(`[test] no readable vitest report at ${reportPath}: ${e.message}`);
}

let passed = 0;
let failed;
if (report) {
  passed = report.numPassedTests ?? 0;
  failed = report.numFailedTests ?? 0;
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
} else {
  failed = 1;
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
