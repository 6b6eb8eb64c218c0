/** The zygote protocol's hand-written checks: exit records read back from disk, request envelopes. */
import { describe, expect, it } from 'vitest';
import { isZygoteRequest, parseExitRecord } from '../../src/runtime/protocol.js';

describe('parseExitRecord', () => {
  it('accepts what the zygote and berth-monitor write', () => {
    expect(parseExitRecord({ pid: 12, exitCode: 0, finishedAt: 1700000000000 })).toEqual({
      pid: 12,
      exitCode: 0,
      finishedAt: 1700000000000,
    });
    expect(parseExitRecord({ pid: 12, exitCode: 137, signal: 9, finishedAt: 1 })).toMatchObject({ signal: 9 });
    const error = {
      step: 'exec',
      message: 'exec: "x": executable file not found in $PATH',
      kind: 'command',
      exitCode: 127,
    };
    expect(parseExitRecord({ pid: 1, exitCode: 127, finishedAt: 1, error })?.error).toEqual(error);
  });

  it('refuses anything else', () => {
    for (const bad of [
      null,
      'x',
      1,
      {},
      { pid: '1', exitCode: 0, finishedAt: 1 },
      { pid: 1, exitCode: 0.5, finishedAt: 1 },
      { pid: 1, exitCode: 0 },
      { pid: 1, exitCode: 0, finishedAt: 1, signal: 'KILL' },
      { pid: 1, exitCode: 0, finishedAt: 1, error: { step: 'x', message: 'y', kind: 'weird', exitCode: 1 } },
      { pid: 1, exitCode: 0, finishedAt: 1, error: null },
    ]) {
      expect(parseExitRecord(bad)).toBeUndefined();
    }
  });
});

describe('isZygoteRequest', () => {
  it('checks the type and the request id', () => {
    expect(isZygoteRequest({ t: 'start', rid: 3, plan: {} })).toBe(true);
    expect(isZygoteRequest({ t: 'cgroups', rid: 4, id: 'a', ok: true })).toBe(true);
    for (const bad of [null, {}, { t: 'start' }, { t: 'nope', rid: 1 }, { t: 'exec', rid: 1.5 }, 'start'])
      expect(isZygoteRequest(bad)).toBe(false);
  });
});
