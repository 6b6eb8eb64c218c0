import { appendFileSync, existsSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fsLogIO, logEnd, readLogLines, type LogIO, type LogLine } from '../../src/container/logs.js';
import { openLogFiles } from '../../src/container/log-files.js';
import { parseLogSize } from '../../src/container/log-options.js';
import { encodeRecord } from '../../src/runtime/log-format.js';
import { LogWriter } from '../../src/runtime/log-writer.js';
import { tempDir } from '../helpers/tmp.js';
import { countingLogIO } from '../helpers/log-io.js';

const stopped = () => Promise.resolve(false);

async function collect(it: AsyncIterable<LogLine>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of it) out.push(l.text);
  return out;
}

/** Writes lines `from`…`to` as `n\n`, `perRecord` lines to a record. */
function writeLines(w: LogWriter, from: number, to: number, perRecord: number): void {
  for (let i = from; i <= to; i += perRecord) {
    let text = '';
    for (let j = i; j < i + perRecord && j <= to; j++) text += `${j}\n`;
    w.write('stdout', BigInt(i), Buffer.from(text));
  }
}

describe('log rotation (writer and reader)', () => {
  it('parses sizes as Docker does: bytes, k, m, g; refuses the rest', () => {
    expect([
      parseLogSize('10k'),
      parseLogSize('10m'),
      parseLogSize('1g'),
      parseLogSize(4096),
      parseLogSize('1.5k'),
      parseLogSize('2MB'),
    ]).toEqual([10240, 10 * 1024 * 1024, 1024 ** 3, 4096, 1536, 2 * 1024 * 1024]);
    for (const bad of ['', 'k', '10x', '-1', 0, -3, 1.5, '1.5.m'])
      expect(parseLogSize(bad as string), String(bad)).toBeUndefined();
  });

  it('logs({ tail: 100 }) of a log of over 80 MB (5 files of 20 MB) reads a few KiB from the end, and returns the last 100 lines', async () => {
    const dir = tempDir('logrot');
    const path = join(dir, 'output.log');
    const w = new LogWriter(path, { maxSize: 20 * 1024 * 1024, maxFile: 5 });
    // 64 KiB records, as a pipe gives them to the writer under load.
    const n = (100 * 1024 * 1024) / 8;
    writeLines(w, 1, n, 8000);
    w.close();
    const total = [0, 1, 2, 3, 4].reduce((a, i) => a + statSync(i ? `${path}.${i}` : path).size, 0);
    expect(total).toBeGreaterThan(80 * 1024 * 1024);
    const io = countingLogIO();
    const lines = await collect(readLogLines({ path, maxFile: 5, io }, { tail: 100 }, stopped));
    expect(lines).toEqual(Array.from({ length: 100 }, (_, i) => `${n - 99 + i}\n`));
    expect(io.bytes).toBeLessThan(16 * 1024);
  });

  it('tail reads on into older files when the newest holds fewer lines, in order', async () => {
    const dir = tempDir('logrot');
    const path = join(dir, 'output.log');
    const w = new LogWriter(path, { maxSize: 1000, maxFile: 10 });
    writeLines(w, 1, 2000, 1);
    w.close();
    const io = countingLogIO();
    const lines = await collect(readLogLines({ path, maxFile: 10, io }, { tail: 150 }, stopped));
    expect(lines).toEqual(Array.from({ length: 150 }, (_, i) => `${1851 + i}\n`));
    expect(io.bytes).toBeLessThan(16 * 1024);
  });

  it('logs() reads the kept files oldest first and drops the rest of a line whose start was rotated away', async () => {
    const dir = tempDir('logrot');
    const path = join(dir, 'output.log');
    const w = new LogWriter(path, { maxSize: 100, maxFile: 3 });
    // Records split lines: "…12\n13\n1" then "4\n15\n…"; rotations fall inside lines.
    const text = Array.from({ length: 400 }, (_, i) => `${i + 1}\n`).join('');
    for (let off = 0; off < text.length; off += 7)
      w.write('stdout', BigInt(off), Buffer.from(text.slice(off, off + 7)));
    w.close();
    expect(existsSync(`${path}.3`)).toBe(false);
    const lines = await collect(readLogLines({ path, maxFile: 3 }, {}, stopped));
    const first = Number(lines[0]);
    expect(first).toBeGreaterThan(300);
    expect(lines).toEqual(Array.from({ length: 400 - first + 1 }, (_, i) => `${first + i}\n`));
  });

  it('follow continues across rotations: every line once, in order', async () => {
    const dir = tempDir('logrot');
    const path = join(dir, 'output.log');
    const w = new LogWriter(path, { maxSize: 512, maxFile: 1000 });
    let done = false;
    const seen: string[] = [];
    const reader = (async () => {
      for await (const l of readLogLines({ path, maxFile: 1000 }, { follow: true }, () => Promise.resolve(!done)))
        seen.push(l.text);
    })();
    for (let i = 1; i <= 5000; i += 10) {
      writeLines(w, i, i + 9, 1);
      await new Promise((r) => setImmediate(r));
    }
    w.close();
    done = true;
    await reader;
    expect(seen).toEqual(Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`));
  });

  it('tail with follow starts after the last whole record when the writer is halfway through one, and gets that record once it is whole', async () => {
    const dir = tempDir('logrot');
    const path = join(dir, 'output.log');
    const w = new LogWriter(path, { maxSize: 1024 * 1024, maxFile: 2 });
    writeLines(w, 1, 50, 1);
    w.close();
    const next = encodeRecord('stdout', 51n, Buffer.from('51\n'));
    appendFileSync(path, next.subarray(0, 6));
    let done = false;
    const seen: string[] = [];
    for await (const l of readLogLines({ path, maxFile: 2 }, { follow: true, tail: 2 }, () => Promise.resolve(!done))) {
      seen.push(l.text);
      if (seen.length === 2) {
        appendFileSync(path, next.subarray(6));
        done = true;
      }
    }
    expect(seen).toEqual(['49\n', '50\n', '51\n']);
  });

  it('reads a log written before records had a trailing length (tail falls back to reading it forwards)', async () => {
    const dir = tempDir('logrot');
    const path = join(dir, 'output.log');
    const old = (text: string) => {
      const r = encodeRecord('stdout', 1n, Buffer.from(text));
      const legacy = Buffer.from(r.subarray(0, r.length - 4));
      legacy[0] = 1;
      return legacy;
    };
    writeFileSync(path, Buffer.concat(['a\n', 'b\n', 'c\n'].map(old)));
    expect(await collect(readLogLines({ path, maxFile: 5 }, {}, stopped))).toEqual(['a\n', 'b\n', 'c\n']);
    expect(await collect(readLogLines({ path, maxFile: 5 }, { tail: 2 }, stopped))).toEqual(['b\n', 'c\n']);
  });
});

describe('log files: errors are never taken for a missing log', () => {
  it('an open that fails after other files were opened throws that failure, with the failed closes attached as its cause', async () => {
    const path = join(tempDir('log-open-fail'), 'output.log');
    const closeFailure = new Error('close failed');
    const openFailure = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    const io: LogIO = {
      open: async (p) => {
        if (p !== path) throw openFailure;
        return {
          ino: 1,
          size: async () => 0,
          read: async () => 0,
          close: async () => {
            throw closeFailure;
          },
        };
      },
      ino: async () => 1,
    };
    const err = await openLogFiles({ path, maxFile: 3 }, io).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBe(openFailure);
    expect((err as Error).cause).toBe(closeFailure);
  });

  it('logEnd is undefined for a log that does not exist, and throws for a path that cannot be read (ELOOP)', async () => {
    const dir = tempDir('log-end');
    expect(await logEnd(join(dir, 'output.log'))).toBeUndefined();
    symlinkSync('loop', join(dir, 'loop'));
    await expect(logEnd(join(dir, 'loop', 'output.log'))).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await fsLogIO.ino(join(dir, 'output.log'))).toBeUndefined();
    await expect(fsLogIO.ino(join(dir, 'loop', 'output.log'))).rejects.toMatchObject({ code: 'ELOOP' });
  });
});

describe('reading a log: a file that cannot be closed', () => {
  it("a reader stopping early (return) while in a rotated file rejects with that file's close failure", async () => {
    const path = join(tempDir('log-close'), 'output.log');
    const w = new LogWriter(path, { maxSize: 100, maxFile: 2 });
    writeLines(w, 1, 40, 1);
    w.close();
    expect(existsSync(`${path}.1`)).toBe(true);
    const failure = new Error('close failed');
    const io: LogIO = {
      open: async (p) => {
        const f = await fsLogIO.open(p);
        if (!f || p !== `${path}.1`) return f;
        return { ...f, close: async () => (await f.close(), Promise.reject(failure)) };
      },
      ino: fsLogIO.ino,
    };
    const lines = readLogLines({ path, maxFile: 2, io }, {}, stopped);
    expect((await lines.next()).done).toBe(false);
    await expect(lines.return(undefined)).rejects.toBe(failure);
  });
});
