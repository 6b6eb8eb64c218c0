/**
 * A follower of a log (`readLogLines` with `follow`) while the writer rotates it at chosen moments:
 * at each file operation of the reader in turn (its scans for the next file, its reads), the
 * writer adds lines, one file each, so that every such moment sees a rotation under it.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fsLogIO, readLogLines, type LogIO, type LogLine } from '../../src/container/logs.js';
import { LineSplitter } from '../../src/container/log-lines.js';
import { makeRecord, KIND_BOUNDARY } from '../../src/runtime/log-format.js';
import { LogWriter, rotatedPath } from '../../src/runtime/log-writer.js';
import { tempDir } from '../helpers/tmp.js';

/** `inner` calling `before()` ahead of every file operation (open, stat, size, read). */
function hookedIO(before: (op: string) => void, inner: LogIO = fsLogIO): LogIO {
  return {
    async open(path) {
      before('open');
      const f = await inner.open(path);
      if (!f) return f;
      return {
        ino: f.ino,
        close: () => f.close(),
        size: () => (before('size'), f.size()),
        read: (...a) => (before('read'), f.read(...a)),
      };
    },
    ino: (path) => (before('ino'), inner.ino(path)),
  };
}

/**
 * {@link fsLogIO} on the files of the log at `path`, with inode numbers as a file system gives
 * them that reuses a number at once: a file seen for the first time takes the number of a file
 * no longer named nor open here, if there is one.
 */
function reusingIO(path: string, maxFile: number): LogIO {
  const numbers = new Map<number, number>(); // real inode → number shown
  const opened = new Map<number, number>(); // real inode → open count
  let next = 1;
  const numberOf = (real: number): number => {
    const known = numbers.get(real);
    if (known !== undefined) return known;
    const named = new Set<number>();
    for (let i = 0; i <= maxFile; i++)
      if (existsSync(rotatedPath(path, i))) named.add(statSync(rotatedPath(path, i)).ino);
    const free = [...numbers].find(([r]) => !named.has(r) && !opened.get(r));
    if (free) numbers.delete(free[0]);
    const n = free?.[1] ?? next++;
    numbers.set(real, n);
    return n;
  };
  return {
    async open(p) {
      const f = await fsLogIO.open(p);
      if (!f) return f;
      opened.set(f.ino, (opened.get(f.ino) ?? 0) + 1);
      return {
        ino: numberOf(f.ino),
        size: () => f.size(),
        read: (...a) => f.read(...a),
        close: async () => {
          opened.set(f.ino, opened.get(f.ino)! - 1);
          await f.close();
        },
      };
    },
    ino: async (p) => {
      const real = await fsLogIO.ino(p);
      return real === undefined ? undefined : numberOf(real);
    },
  };
}

/**
 * Follows a log of `maxFile` files where every line is a file of its own (two written first),
 * and writes more lines at chosen file operations of the reader (`bursts`: [the operation's
 * index, counted from its first read, or `fromOpen` its first operation; the lines written]). Returns the lines followed, the number
 * of lines written and whether every burst happened.
 */
async function followWithBursts(
  maxFile: number,
  bursts: Array<[at: number, lines: number]>,
  reuse = false,
  fromOpen = false,
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
  let fired = 0;
  const io = hookedIO(
    (op) => {
      reading ||= fromOpen || op === 'read';
      if (!reading) return;
      for (const [at, lines] of bursts) {
        if (at !== calls) continue;
        fired++;
        for (let i = 0; i < lines; i++) line();
      }
      calls++;
    },
    reuse ? reusingIO(path, maxFile) : fsLogIO,
  );
  let polls = 0;
  const got: LogLine[] = [];
  try {
    for await (const l of readLogLines({ path, maxFile, io }, { follow: true }, async () => polls++ < 3)) got.push(l);
  } finally {
    w.close();
  }
  return { got, written, fired: fired === bursts.length };
}

const numbers = (lines: LogLine[]) => lines.map((l) => Number(l.text));
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/**
 * Checks lines followed from a log of `written` numbered lines: never one twice or out of order,
 * up to the last one, and the line after any missing ones marked lost (the only mark); `loses`:
 * some are missing (exactly one gap).
 */
function expectMarkedGaps(got: LogLine[], written: number, loses: boolean, label: string): void {
  const n = numbers(got);
  const where = `${label}: ${n.map((v, i) => (got[i]!.lost ? `lost ${v}` : v)).join(',')}`;
  expect(
    n.every((v, i) => i === 0 || v > n[i - 1]!),
    where,
  ).toBe(true);
  expect(n.at(-1), where).toBe(written);
  const gaps = n.flatMap((v, i) => (v !== (i ? n[i - 1]! + 1 : 1) ? [i] : []));
  const marks = got.flatMap((l, i) => (l.lost ? [i] : []));
  if (loses) expect(gaps, where).toHaveLength(1);
  expect(marks.length, where).toBeLessThanOrEqual(1);
  for (const g of gaps) expect(marks, where).toContain(g);
}

describe('follow while the log rotates under the reader', () => {
  for (const [maxFile, reuse] of [
    [2, false],
    [3, false],
    [5, false],
    [2, true],
    [3, true],
  ] as const)
    it(`maxFile ${maxFile}${reuse ? ', inode numbers reused at once' : ''}: rotated up to maxFile − 1 times at any of the reader's file operations, it gets every line once, in order, none marked lost`, async () => {
      let moments = 0;
      for (let burst = 1; burst <= maxFile - 1; burst++)
        for (let at = 0; ; at++) {
          const { got, written, fired } = await followWithBursts(maxFile, [[at, burst]], reuse);
          if (!fired) break;
          moments++;
          expect(numbers(got), `burst ${burst} at ${at}`).toEqual(upTo(written));
          expect(got.filter((l) => l.lost).length, `burst ${burst} at ${at}`).toBe(0);
        }
      expect(moments).toBeGreaterThan(10);
    });

  for (const [maxFile, burst, reuse] of [
    [2, 3, false],
    [3, 4, false],
    [2, 2, true],
    [2, 3, true],
    [3, 3, true],
    [3, 4, true],
  ] as const)
    it(`maxFile ${maxFile}${reuse ? ', inode numbers reused at once' : ''}: rotated ${burst} times at once at any of the reader's file operations, it never repeats or reorders a line, and the line after missing ones is marked lost`, async () => {
      let moments = 0;
      for (let at = 0; ; at++) {
        const { got, written, fired } = await followWithBursts(maxFile, [[at, burst]], reuse);
        if (!fired) break;
        moments++;
        expectMarkedGaps(got, written, burst > maxFile, `at ${at}`);
      }
      expect(moments).toBeGreaterThan(10);
    });

  for (const maxFile of [2, 3])
    it(`maxFile ${maxFile}: rotated up to maxFile − 1 times at any of the reader's file operations from its first look at the log's files on, it gets the lines from the oldest file it opened on, each once, in order, none marked lost`, async () => {
      let moments = 0;
      for (let burst = 1; burst <= maxFile - 1; burst++)
        for (let at = 0; ; at++) {
          const { got, written, fired } = await followWithBursts(maxFile, [[at, burst]], false, true);
          if (!fired) break;
          moments++;
          const n = numbers(got);
          // What was dropped before the reader opened it was never the reader's: it starts later.
          expect(n, `burst ${burst} at ${at}`).toEqual(upTo(written).slice(n[0]! - 1));
          expect(
            got.filter((l) => l.lost),
            `burst ${burst} at ${at}`,
          ).toEqual([]);
        }
      expect(moments).toBeGreaterThan(10);
    });

  for (const reuse of [false, true])
    it(`maxFile 2${reuse ? ', inode numbers reused at once' : ''}: rotated once, then twice at a later file operation (between its look at the names and its open), it never takes a newer file for the next one unmarked`, async () => {
      let moments = 0;
      for (let first = 0; first < 12; first++)
        for (let then = first + 1; then < first + 8; then++) {
          const { got, written, fired } = await followWithBursts(
            2,
            [
              [first, 1],
              [then, 2],
            ],
            reuse,
          );
          if (!fired) continue;
          moments++;
          expectMarkedGaps(got, written, false, `once at ${first}, twice at ${then}`);
        }
      expect(moments).toBeGreaterThan(30);
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
