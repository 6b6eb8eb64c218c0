import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeRecord } from '../../src/runtime/log-format.js';
import { LineSplitter } from '../../src/container/logs.js';

describe('log records', () => {
  it('round-trips and leaves a partial record for later', () => {
    const a = encodeRecord('stdout', 1n, Buffer.from('hello\n'));
    const b = encodeRecord('stderr', 2n, Buffer.from([0xff, 0x00, 0x0a]));
    const all = Buffer.concat([a, b]);
    const { records, consumed } = decodeRecords(all.subarray(0, all.length - 1));
    expect(records).toHaveLength(1);
    expect(consumed).toBe(a.length);
    const full = decodeRecords(all);
    expect(full.records.map((r) => [r.stream, r.timeNs, [...r.data]])).toEqual([
      ['stdout', 1n, [...Buffer.from('hello\n')]],
      ['stderr', 2n, [0xff, 0x00, 0x0a]],
    ]);
  });
  it('splits lines per stream, joining chunks and keeping the first chunk’s time', () => {
    const s = new LineSplitter();
    const rec = (stream: 'stdout' | 'stderr', t: bigint, text: string) => ({
      stream,
      timeNs: t,
      data: Buffer.from(text),
    });
    expect(s.push([rec('stdout', 1n, 'ab'), rec('stderr', 2n, 'x\n'), rec('stdout', 3n, 'c\nd')])).toEqual([
      { stream: 'stderr', text: 'x\n', timeNs: 2n },
      { stream: 'stdout', text: 'abc\n', timeNs: 1n },
    ]);
    expect(s.flush()).toEqual([{ stream: 'stdout', text: 'd', timeNs: 3n }]);
  });
});
