/**
 * The output cap's rule (`runtime/log-cap.ts`), and `LogWriter` following it on real files: for
 * interleaved writes of both streams, each stream's kept bytes are its first `maxOutput` (head) or
 * a suffix of at least `maxOutput` and at most `3 × maxOutput + 192 KiB` (tail).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headKept, tailDrops, tailRotates, TAIL_LOG_FILES } from '../../src/runtime/log-cap.js';
import { LogWriter, rotatedPath } from '../../src/runtime/log-writer.js';
import { decodeRecords, type LogStream } from '../../src/runtime/log-format.js';
import { tempDir } from '../helpers/tmp.js';

describe('output cap rule', () => {
  it.each([
    // kept, n, max → logged
    [0, 10, 100, 10],
    [95, 10, 100, 5],
    [100, 10, 100, 0],
    [150, 10, 100, 0],
    [0, 0, 100, 0],
  ])('head: %i kept, a chunk of %i, max %i: logs %i', (kept, n, max, want) => {
    expect(headKept(kept, n, max)).toBe(want);
  });

  it.each([
    // in current, n, max → rotates
    [0, 500, 100, false],
    [90, 10, 100, false],
    [90, 11, 100, true],
    [100, 1, 100, true],
  ])('tail: %i in the current file, a chunk of %i, max %i: rotates %s', (inCurrent, n, max, want) => {
    expect(tailRotates(inCurrent, n, max)).toBe(want);
  });

  it.each([
    // rest, size, newer, max → dropped
    [150, 30, 0, 100, true],
    [120, 30, 0, 100, false],
    [50, 30, 80, 100, true],
    [50, 30, 79, 100, false],
    [10, 10, 0, 100, false],
  ])('tail: rest %i, a record of %i, %i newer, max %i: dropped %s', (rest, size, newer, max, want) => {
    expect(tailDrops(rest, size, newer, max)).toBe(want);
  });
});

/** A pseudo-random sequence (xorshift), so a failure replays. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** Each stream's bytes in the log at `path`, across its files, oldest first. */
function keptBytes(path: string): Record<LogStream, Buffer> {
  const out: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
  for (let i = 9; i >= 0; i--) {
    const p = rotatedPath(path, i);
    if (!existsSync(p)) continue;
    for (const r of decodeRecords(readFileSync(p)).records) if (r.boundary === undefined) out[r.stream].push(r.data);
  }
  return { stdout: Buffer.concat(out.stdout), stderr: Buffer.concat(out.stderr) };
}

describe('LogWriter with an output cap', () => {
  // Streams of distinct bytes, so that a suffix check means something; stderr written rarely in some.
  it.each([
    ['head', 1, 0.5, 1000],
    ['head', 2, 0.02, 50_000],
    ['tail', 3, 0.5, 1000],
    ['tail', 4, 0.02, 1000],
    ['tail', 5, 0.001, 4096],
    ['tail', 6, 0.3, 70_000],
  ] as const)(
    'keep %s (seed %i, stderr share %f, max %i): each stream keeps what the rule says',
    (keep, seed, share, max) => {
      const path = join(tempDir('logcap'), 'output.log');
      const w = new LogWriter(path, { maxSize: 1 << 30, maxFile: TAIL_LOG_FILES, maxOutput: max, keep });
      const next = random(seed);
      const written: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
      let t = 0n;
      for (let i = 0; i < 3000; i++) {
        const stream: LogStream = next() < share ? 'stderr' : 'stdout';
        const data = Buffer.alloc(1 + Math.floor(next() * 2000));
        for (let j = 0; j < data.length; j++) data[j] = Math.floor(next() * 256);
        written[stream].push(data);
        w.write(stream, t++, data);
      }
      w.close();
      const kept = keptBytes(path);
      const cut: Record<string, true> = {};
      for (const s of ['stdout', 'stderr'] as const) {
        const all = Buffer.concat(written[s]);
        if (keep === 'head') expect(kept[s].equals(all.subarray(0, max))).toBe(true);
        else {
          expect(all.subarray(all.length - kept[s].length).equals(kept[s])).toBe(true);
          expect(kept[s].length).toBeGreaterThanOrEqual(Math.min(all.length, max));
          expect(kept[s].length).toBeLessThanOrEqual(3 * max + 192 * 1024);
        }
        if (kept[s].length < all.length) cut[s] = true;
      }
      expect(w.truncated ?? {}).toEqual(cut);
      expect(existsSync(rotatedPath(path, TAIL_LOG_FILES))).toBe(false);
    },
  );
});
