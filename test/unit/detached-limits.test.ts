/**
 * What a detached container's monitor is given and what it reports: its arguments for the log's
 * limits, the output cap and the run time limit, and its exit record's `timedOut` and
 * `outputTruncated` as the engine reads them back.
 */
import { describe, expect, it } from 'vitest';
import { monitorLimits } from '../../src/runtime/detach.js';
import { parseExitRecord } from '../../src/runtime/protocol.js';

describe('monitor arguments', () => {
  it.each([
    [{ log: { maxSize: 100, maxFile: 2 } }, ['100', '2', '0', 'head', '0']],
    [
      { log: { maxSize: 100, maxFile: 3, maxOutput: 64, keep: 'tail' as const }, timeout: 1500 },
      ['100', '3', '64', 'tail', '1500'],
    ],
    [{ log: { maxSize: 7, maxFile: 1, maxOutput: 5 }, timeout: undefined }, ['7', '1', '5', 'head', '0']],
  ])('%j → %j', (files, want) => {
    expect(monitorLimits(files)).toEqual(want);
  });
});

describe('exit record of a monitor', () => {
  const base = { pid: 5, exitCode: 137, signal: 9, finishedAt: 1 };
  it.each([
    [{ ...base, timedOut: true }, true],
    [{ ...base, outputTruncated: { stdout: true } }, true],
    [{ ...base, outputTruncated: { stdout: true, stderr: true }, timedOut: true }, true],
    [{ ...base, timedOut: 'yes' }, false],
    [{ ...base, outputTruncated: null }, false],
    [{ ...base, outputTruncated: 3 }, false],
  ])('%j is an exit record: %s', (value, ok) => {
    expect(parseExitRecord(value) !== undefined).toBe(ok);
  });
});
