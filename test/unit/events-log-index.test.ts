/**
 * The event log's index (`log-index.ts`): a read from `since` returns exactly what a full scan
 * of the log filtered by `since` returns, whatever the order of times in the log, and an index
 * that does not describe its file (corrupt, stale, of another file, of a truncated file) is
 * detected, not used, and rebuilt.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EventLog } from '../../src/events/event-log.js';
import { INDEX_STEP, indexFileOf } from '../../src/events/log-index.js';
import { asEvent, type BerthEvent } from '../../src/events/types.js';
import { tempDir } from '../helpers/tmp.js';

/** A seeded PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every event of the log's files, parsed line by line with no index: the reference. */
function fullScan(log: EventLog): BerthEvent[] {
  const out: BerthEvent[] = [];
  for (const f of [`${log.file}.1`, log.file]) {
    if (!fs.existsSync(f)) continue;
    const text = fs.readFileSync(f, 'utf8');
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
      try {
        const e = asEvent(JSON.parse(line));
        if (e) out.push(e);
      } catch {
        // torn or foreign
      }
    }
  }
  return out;
}

/** The checkpoints of the index of log file `file`. */
function checkpoints(file: string): { offset: number; maxTime: number }[] {
  const flat = (JSON.parse(fs.readFileSync(indexFileOf(file), 'utf8').slice(9)) as { points: number[] }).points;
  const out = [];
  for (let i = 0; i < flat.length; i += 3) out.push({ offset: flat[i]!, maxTime: flat[i + 1]! });
  return out;
}

const since = (log: EventLog, t: number) => fullScan(log).filter((e) => e.time >= t);

/** Rewrites an index file with its JSON changed by `edit`, with a valid checksum. */
function forge(
  file: string,
  edit: (v: { ino: number; head: number; headLen: number; points: (number | null)[] }) => void,
): void {
  const text = fs.readFileSync(file, 'utf8');
  const v = JSON.parse(text.slice(9)) as Parameters<typeof edit>[0];
  edit(v);
  const json = JSON.stringify(v);
  fs.writeFileSync(file, `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`);
}

const pad = 'p'.repeat(120);

describe('EventLog index: reads from since', () => {
  it('returns exactly what a full scan returns, for random times out of order, torn lines and rotations (3 seeds × 4000 events)', async () => {
    for (const seed of [1, 2, 3]) {
      const random = rng(seed);
      const log = new EventLog(tempDir('events-index'), { maxBytes: 12 * INDEX_STEP });
      const t0 = 1_700_000_000_000;
      let clock = t0;
      const probes: number[] = [];
      for (let i = 0; i < 4000; i++) {
        clock += Math.floor(random() * 20);
        // mostly close to the clock, sometimes far behind or ahead (a slow appender, a caller's own time)
        const r = random();
        const time =
          r < 0.05
            ? clock - Math.floor(random() * 60_000)
            : r < 0.07
              ? clock + Math.floor(random() * 60_000)
              : clock - Math.floor(random() * 50);
        await log.append({ type: 'container', action: 'tick', id: `c${i}`, attributes: { pad }, time });
        if (random() < 0.01) fs.appendFileSync(log.file, '{"type":"container","action":"torn","id":"x","attr\n');
        if (random() < 0.02) probes.push(time, time + 1, clock - Math.floor(random() * 100_000));
        if (i % 500 === 499) {
          // reads in between extend the index from wherever it stands
          const t = clock - Math.floor(random() * 10_000);
          expect(await log.read({ since: t })).toEqual(since(log, t));
        }
      }
      expect(fs.existsSync(`${log.file}.1`)).toBe(true);
      expect(fs.existsSync(indexFileOf(log.file))).toBe(true);
      expect(fs.existsSync(indexFileOf(`${log.file}.1`))).toBe(true);
      const all = fullScan(log);
      // the boundaries: each checkpoint's maxTime, and one past it
      const maxima = [log.file, `${log.file}.1`].flatMap((f) =>
        checkpoints(f).flatMap((p) => [p.maxTime, p.maxTime + 1]),
      );
      expect(maxima.length).toBeGreaterThan(10);
      for (const t of [...maxima, ...probes.filter((_, i) => i % 4 === 0), 0, t0, clock, clock + 1, clock + 120_000]) {
        expect(await log.read({ since: t })).toEqual(all.filter((e) => e.time >= t));
      }
      // the stream behind engine.events(): past events from since, to until
      const t = probes[probes.length - 1]!;
      const streamed: BerthEvent[] = [];
      for await (const e of log.follow({ since: t, until: Date.now() })) streamed.push(e);
      expect(streamed).toEqual(since(log, t).filter((e) => e.time <= Date.now()));
    }
  });

  it('indexes the rotated file to its end, so that a read from now finds nothing in it', async () => {
    const log = new EventLog(tempDir('events-index'), { maxBytes: 8 * INDEX_STEP });
    const old = Date.now() - 3_600_000;
    for (let i = 0; !fs.existsSync(`${log.file}.1`); i++)
      await log.append({ type: 'container', action: 'tick', id: `c${i}`, attributes: { pad }, time: old + i });
    const points = checkpoints(`${log.file}.1`);
    expect(points[points.length - 1]!.offset).toBe(fs.statSync(`${log.file}.1`).size);
    expect(points.length).toBeGreaterThanOrEqual(3);
  });
});

describe('EventLog index: crashes', () => {
  it('a rotation deletes the temp files of index writers that were killed, and keeps those of live ones', async () => {
    const root = tempDir('events-index');
    const log = new EventLog(root, { maxBytes: 8 * INDEX_STEP });
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // exited: its pid names no process (until reused)
    const deadTemp = path.join(root, `.events.log.idx.tmp-${dead.toString(36)}-0`);
    const liveTemp = path.join(root, `.events.log.1.idx.tmp-${(1).toString(36)}-0`);
    fs.writeFileSync(deadTemp, 'half');
    fs.writeFileSync(liveTemp, 'half');
    for (let i = 0; !fs.existsSync(`${log.file}.1`); i++)
      await log.append({ type: 'container', action: 'tick', id: `c${i}`, attributes: { pad } });
    expect(fs.existsSync(deadTemp)).toBe(false);
    expect(fs.existsSync(liveTemp)).toBe(true);
  });
});

describe('EventLog index: never trusted', () => {
  async function filled(): Promise<{ log: EventLog; idx: string; t: number }> {
    const log = new EventLog(tempDir('events-index'));
    const t0 = 1_700_000_000_000;
    for (let i = 0; i < 1500; i++)
      await log.append({ type: 'container', action: 'tick', id: `c${i}`, attributes: { pad }, time: t0 + i * 10 });
    const idx = indexFileOf(log.file);
    expect(fs.existsSync(idx)).toBe(true);
    return { log, idx, t: t0 + 300 * 10 }; // early: a lying index would skip most of what follows
  }

  /** The index the next read writes is a valid one of this file again. */
  async function rebuilt(log: EventLog, idx: string, t: number): Promise<void> {
    expect(await log.read({ since: t })).toEqual(since(log, t));
    const text = fs.readFileSync(idx, 'utf8');
    expect(crc32(text.slice(9).trimEnd()).toString(16).padStart(8, '0')).toBe(text.slice(0, 8));
    expect(JSON.parse(text.slice(9))).toMatchObject({ ino: fs.statSync(log.file).ino });
  }

  it('a corrupt index (a flipped byte, garbage, empty) is ignored and rebuilt', async () => {
    const { log, idx, t } = await filled();
    const good = fs.readFileSync(idx);
    for (const bad of [Buffer.from(good).fill(0x37, 40, 41), Buffer.from('garbage\n'), Buffer.alloc(0)]) {
      fs.writeFileSync(idx, bad);
      await rebuilt(log, idx, t);
    }
  });

  it('an index with a valid checksum that claims every event is old is not trusted when it names another file or content', async () => {
    const { log, idx, t } = await filled();
    const lie = (v: { points: (number | null)[] }) => {
      for (let i = 1; i < v.points.length; i += 3) v.points[i] = 0; // "nothing after since here": would skip everything
    };
    forge(idx, (v) => {
      lie(v);
      v.ino += 1; // another file
    });
    await rebuilt(log, idx, t);
    forge(idx, (v) => {
      lie(v);
      v.head ^= 1; // same inode number, other content: the inode of a deleted generation reused
    });
    await rebuilt(log, idx, t);
  });

  it('a checkpoint inside a line, or in a log truncated by hand and grown again, is not used', async () => {
    const { log, idx } = await filled();
    const points = checkpoints(log.file);
    const k = points.length - 1;
    const t = points[k]!.maxTime + 1; // a read from t starts at checkpoint k, whose line has a later time
    forge(idx, (v) => {
      v.points[3 * k] = (v.points[3 * k] as number) + 5; // inside that line
    });
    await rebuilt(log, idx, t);
    // Truncated to half, then grown again (by hand) with lines of the same lengths but later
    // times: the old checkpoints fall on line starts again, and their maxima are too low.
    const text = fs.readFileSync(log.file, 'utf8');
    const cut = text.lastIndexOf('\n', text.length / 2) + 1;
    fs.truncateSync(log.file, cut);
    const later = 1_800_000_000_000;
    fs.appendFileSync(log.file, text.slice(cut).replaceAll('"time":17', '"time":18'));
    expect(await log.read({ since: later })).toEqual(since(log, later));
    expect((await log.read({ since: later })).length).toBeGreaterThan(100);
  });

  it('a stale index left by a crash during rotation (the old generation’s index beside the new log) is not used', async () => {
    const log = new EventLog(tempDir('events-index'), { maxBytes: 8 * INDEX_STEP });
    const old = Date.now() - 3_600_000;
    for (let i = 0; !fs.existsSync(`${log.file}.1`); i++)
      await log.append({ type: 'container', action: 'tick', id: `c${i}`, attributes: { pad }, time: old + i });
    for (let i = 0; i < 200; i++)
      await log.append({ type: 'container', action: 'tock', id: `n${i}`, attributes: { pad } });
    // as if killed between renaming the log and renaming its index
    fs.renameSync(indexFileOf(`${log.file}.1`), indexFileOf(log.file));
    const t = Date.now() - 1000;
    await rebuilt(log, indexFileOf(log.file), t);
    expect((await log.read({ since: t })).map((e) => e.action)).toEqual(Array(200).fill('tock'));
    expect(await log.read({ since: old })).toEqual(since(log, old)); // the rotated file, without an index
  });

  it('a reader and an appender never fail because of the index (a directory in its place)', async () => {
    const { log, idx, t } = await filled();
    fs.rmSync(idx);
    fs.mkdirSync(idx);
    for (let i = 0; i < 300; i++)
      await log.append({ type: 'container', action: 'more', id: `m${i}`, attributes: { pad } });
    expect(await log.read({ since: t })).toEqual(since(log, t));
    expect(fs.statSync(idx).isDirectory()).toBe(true);
  });
});
