/**
 * A follower of a log (`readLogLines` with `follow`) while the writer rotates it at chosen moments:
 * at each file operation of the reader in turn (its scans for the next file, its reads), the
 * writer adds lines, one file each, so that every such moment sees a rotation under it.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fsLogIO, readLogLines, type LogIO, type LogLine } from '../../src/container/logs.js';
import { LineSplitter } from '../../src/container/log-lines.js';
import { makeRecord, KIND_BOUNDARY } from '../../src/runtime/log-format.js';
import { LogWriter } from '../../src/runtime/log-writer.js';
import { tempDir } from '../helpers/tmp.js';

/** {@link fsLogIO} calling `before()` ahead of every file operation (open, stat, size, read). */
function hookedIO(before: (op: string) => void): LogIO {
  return {
    async open(path) {
      before('open');
      const f = await fsLogIO.open(path);
      if (!f) return f;
      return {
        ino: f.ino,
        close: () => f.close(),
        size: () => (before('size'), f.size()),
        read: (...a) => (before('read'), f.read(...a)),
      };
    },
    ino: (path) => (before('ino'), fsLogIO.ino(path)),
  };
}

/**
 * Follows a log of `maxFile` files where every line is a file of its own (two written first),
 * and writes `burst` more lines at the reader's `at`-th file operation after its first read.
 * Returns the lines followed (as numbers, `lost` ones marked), the number of lines written and
 * whether the burst happened.
 */
async function followWithBurst(
  maxFile: number,
  burst: number,
  at: number,
): Promise<{ got: LogLine[]; written: number; fired: boolean }> {
  const path = join(tempDir('log-follow-rot'), 'output.log');
  // maxSize 1: each record goes to a new file, the oldest dropped beyond maxFile.
  const w = new LogWriter(path, { maxSize: 1, maxFile });
  let written = 0;
  const line = () => w.write('stdout', BigInt(++written), Buffer.from(`${written}\n`));
  line();
  line();
  let reading = false;
  let calls = 0;
  let fired = false;
  const io = hookedIO((op) => {
    reading ||= op === 'read';
    if (!reading || calls++ !== at) return;
    fired = true;
    for (let i = 0; i < burst; i++) line();
  });
  let polls = 0;
  const got: LogLine[] = [];
  try {
    for await (const l of readLogLines({ path, maxFile, io }, { follow: true }, async () => polls++ < 3)) got.push(l);
  } finally {
    w.close();
  }
  return { got, written, fired };
}

const numbers = (lines: LogLine[]) => lines.map((l) => Number(l.text));
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('follow while the log rotates under the reader', () => {
  for (const maxFile of [2, 3, 5])
    it(`maxFile ${maxFile}: rotated up to maxFile − 1 times at any of the reader's file operations, it gets every line once, in order, none marked lost`, async () => {
      let moments = 0;
      for (let burst = 1; burst <= maxFile - 1; burst++)
        for (let at = 0; ; at++) {
          const { got, written, fired } = await followWithBurst(maxFile, burst, at);
          if (!fired) break;
          moments++;
          expect(numbers(got), `burst ${burst} at ${at}`).toEqual(upTo(written));
          expect(got.filter((l) => l.lost).length, `burst ${burst} at ${at}`).toBe(0);
        }
      expect(moments).toBeGreaterThan(10);
    });

  for (const maxFile of [2, 3])
    it(`maxFile ${maxFile}: rotated maxFile + 1 times at once, it never repeats or reorders a line, and marks the first line after the missing ones lost`, async () => {
      let moments = 0;
      for (let at = 0; ; at++) {
        const { got, written, fired } = await followWithBurst(maxFile, maxFile + 1, at);
        if (!fired) break;
        moments++;
        const n = numbers(got);
        const gap = n.findIndex((v, i) => v !== i + 1);
        expect(gap, `at ${at}: ${n.join(',')}`).toBeGreaterThan(0);
        // Strictly increasing: nothing twice, nothing out of order; the rest up to the last line written.
        expect(n.slice(gap), `at ${at}`).toEqual(upTo(written).slice(n[gap]! - 1));
        expect(
          got.map((l, i) => (l.lost ? i : -1)).filter((i) => i >= 0),
          `at ${at}`,
        ).toEqual([gap]);
      }
      expect(moments).toBeGreaterThan(10);
    });

  it('a follower that missed the end of a line (its file dropped unread) never joins its start to a later line: it goes on at the next whole line, marked lost', async () => {
    const path = join(tempDir('log-follow-rot'), 'output.log');
    const w = new LogWriter(path, { maxSize: 1, maxFile: 2 });
    // One record a file: "1\n", then "2\n3" (line "30" begins), read by the follower first.
    w.write('stdout', 1n, Buffer.from('1\n'));
    w.write('stdout', 2n, Buffer.from('2\n3'));
    let polls = 0;
    const running = async () => {
      // While it waits: the end of "30", then two more lines; the file with "0\n" is dropped.
      if (polls === 1)
        for (const [t, text] of [
          [3n, '0\n'],
          [4n, '31\n'],
          [5n, '32\n'],
        ] as const)
          w.write('stdout', t, Buffer.from(text));
      return polls++ < 3;
    };
    const got: LogLine[] = [];
    try {
      for await (const l of readLogLines({ path, maxFile: 2 }, { follow: true }, running)) got.push(l);
    } finally {
      w.close();
    }
    expect(got.map((l) => [l.text, !!l.lost])).toEqual([
      ['1\n', false],
      ['2\n', false],
      ['31\n', true],
      ['32\n', false],
    ]);
  });

  it('after a place marked lost, the splitter drops the unfinished lines and the rest of the line the next file begins with', () => {
    const s = new LineSplitter();
    const rec = (stream: 'stdout' | 'stderr', text: string) =>
      makeRecord(stream === 'stdout' ? 0x81 : 0x82, 1n, Buffer.from(text));
    const lost = { ...makeRecord(KIND_BOUNDARY, 0n, Buffer.from([1])), lost: true as const };
    expect(s.push([rec('stdout', 'a\nhal'), rec('stderr', 'e1\ne')])).toEqual([
      { stream: 'stdout', text: 'a\n', timeNs: 1n },
      { stream: 'stderr', text: 'e1\n', timeNs: 1n },
    ]);
    // stdout's next file begins mid-line ("…f\n" is the end of a line whose start is gone).
    expect(s.push([lost, rec('stdout', 'f\nb\n'), rec('stderr', 'e2\n')])).toEqual([
      { stream: 'stdout', text: 'b\n', timeNs: 1n, lost: true },
      { stream: 'stderr', text: 'e2\n', timeNs: 1n },
    ]);
    expect(s.flush()).toEqual([]);
  });
});
