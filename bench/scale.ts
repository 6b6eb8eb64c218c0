/**
 * Scale (issue 12): what a call costs when a root holds many records or a long event log.
 *
 * - `Container.list()` (running only) with 10 running containers among 10,000 records: the 10
 *   are real (`sleep`), the 9,990 others exited records written through the record store.
 * - `Container.list({ all: true })` with 2,000 exited records (on a second root).
 * - `engine.events({ since: 1 s ago, until: now })` read to its end with an 8 MiB log (both
 *   generations full), 20 events in the last second.
 * - A remove's longest event-loop block: the longest time between two turns of the event loop
 *   from `remove()` until the container's directories are gone (the deletion in the background
 *   included), for containers that wrote 1 MiB of output; and the deletion of such a container's
 *   directories alone, synchronously (as before) and on the thread pool (as now).
 *
 * Usage: `npx tsx bench/scale.ts [records]` (part of `npm run bench`; default 10,000 records).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image } from '../src/index.js';
import type { ContainerRecord } from '../src/container/record.js';
import { removeTree, removeTreeSync } from '../src/state/remove-tree.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax, timeIt } from './lib/stats.js';

const RECORDS = Math.max(100, Number(process.argv[2] ?? 10_000));
const RUNNING = 10;
const ALL = Math.min(2000, RECORDS);
const base = mkdtempSync(join(tmpdir(), 'berth-bench-scale-'));
const engines: Engine[] = [];
const open = (name: string) => {
  const e = new Engine({ root: join(base, name), runRoot: join(base, name, 'run') });
  engines.push(e);
  return e;
};

/** Writes `n` exited records shaped like `template` straight through the record store. */
async function fill(engine: Engine, template: ContainerRecord, n: number): Promise<void> {
  const t0 = Date.parse(template.created);
  for (let i = 0; i < n; i++) {
    const id = randomBytes(32).toString('hex');
    await engine.containers.records.create(id, {
      ...template,
      id,
      name: '',
      created: new Date(t0 - (i + 1) * 1000).toISOString(),
    });
  }
}

/** The longest gap (ms) between two turns of the event loop while `fn` runs and until `done()` holds. */
async function longestBlock(fn: () => Promise<unknown>, done: () => boolean): Promise<number> {
  let last = performance.now();
  let longest = 0;
  let stop = false;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (!stop) setImmediate(tick);
  };
  setImmediate(tick);
  await fn();
  while (!done()) await new Promise((r) => setTimeout(r, 1));
  stop = true;
  await new Promise((r) => setImmediate(r));
  return longest;
}

const row = (what: string, s: number[], target: string, note = '') => {
  const { min, max } = minMax(s);
  return [what, median(s).toFixed(2), `${min.toFixed(2)}–${max.toFixed(2)}`, String(s.length), target, note];
};

try {
  const { tar } = await benchRootfs();
  const rows: string[][] = [];

  // ── list of 10 running among RECORDS ──
  const big = open('big');
  await Image.import(tar, { ref: 'bench/busybox', engine: big });
  const done = await Container.run('bench/busybox', ['true'], { engine: big, network: 'none' });
  await done.wait();
  const template = await big.containers.records.get(await done.id());
  for (let i = 0; i < RUNNING; i++)
    await Container.run('bench/busybox', ['sleep', '600'], { engine: big, network: 'none' });
  await fill(big, template!, RECORDS - RUNNING - 1);
  const running = await Container.list({ engine: big });
  if (running.length !== RUNNING) throw new Error(`expected ${RUNNING} running containers, listed ${running.length}`);
  rows.push(
    row(
      `list (running) ${RUNNING} of ${RECORDS}`,
      await timeIt(() => Container.list({ engine: big }), 20, { warmup: 2 }),
      '≤ 5',
    ),
  );

  // ── list all of ALL ──
  const mid = open('mid');
  await fill(mid, template!, ALL);
  const all = await Container.list({ engine: mid, all: true });
  if (all.length !== ALL) throw new Error(`expected ${ALL} containers, listed ${all.length}`);
  rows.push(
    row(
      `list all ${ALL}`,
      await timeIt(() => Container.list({ engine: mid, all: true }), 10, { warmup: 1 }),
      '-',
      'each record read and returned',
    ),
  );

  // ── events since 1 s ago, 8 MiB log ──
  const ev = open('events');
  const old = Date.now() - 3_600_000;
  const attributes = { name: 'bench', image: 'bench/busybox', 'com.example.label': 'x'.repeat(64) };
  let n = 0;
  const logBytes = () =>
    ['events.log', 'events.log.1'].reduce(
      (s, f) => s + (statSync(join(ev.root, f), { throwIfNoEntry: false })?.size ?? 0),
      0,
    );
  // Up to just below the rotation of the second generation (at 4 MiB), leaving room for the recent 20.
  while (!existsSync(join(ev.root, 'events.log.1')) || logBytes() < 8 * 1024 * 1024 - 16 * 1024) {
    await ev.eventLog.append({
      type: 'container',
      action: 'start',
      id: randomBytes(32).toString('hex'),
      attributes,
      time: old + n++,
    });
  }
  for (let i = 0; i < 20; i++)
    await ev.eventLog.append({ type: 'container', action: 'die', id: randomBytes(32).toString('hex'), attributes });
  const readRecent = async () => {
    let count = 0;
    for await (const _ of ev.events({ since: Date.now() - 1000, until: Date.now() })) count++;
    return count;
  };
  if ((await readRecent()) !== 20) throw new Error('events since 1 s ago: expected the 20 recent events');
  rows.push(
    row(
      `events since 1 s ago, ${(logBytes() / 1048576).toFixed(1)} MiB log`,
      await timeIt(readRecent, 20, { warmup: 2 }),
      '≤ 2',
      `${n + 20} events, 20 returned`,
    ),
  );

  // ── a remove's longest event-loop block ──
  const rm = open('rm');
  await Image.import(tar, { ref: 'bench/busybox', engine: rm });
  const blocks: number[] = [];
  const containersDir = join(rm.root, 'containers');
  const gone = (id: string) => () =>
    !existsSync(join(containersDir, id)) && !readdirSync(containersDir).some((f) => f.startsWith('.trash-'));
  for (let i = 0; i < 22; i++) {
    const c = await Container.run('bench/busybox', ['sh', '-c', 'head -c 1048576 /dev/zero; echo hello'], {
      engine: rm,
      network: 'none',
    });
    await c.wait();
    const id = await c.id();
    const b = await longestBlock(() => c.remove(), gone(id));
    if (i >= 2) blocks.push(b);
  }
  rows.push(
    row(
      'remove: longest event-loop block',
      blocks.sort((a, b) => a - b),
      '-',
      'until its dirs are gone; 1 MiB of output',
    ),
  );

  // ── the deletion alone: on the event loop (removeTreeSync, as before) or on the thread pool ──
  const fakeDir = (i: number) => {
    const d = join(base, 'dirs', `c${i}`);
    mkdirSync(join(d, 'upper', 'etc'), { recursive: true });
    mkdirSync(join(d, 'work', 'work'), { recursive: true });
    writeFileSync(join(d, 'output.log'), Buffer.alloc(1 << 20, 1));
    for (const f of ['hosts', 'hostname', 'resolv.conf']) writeFileSync(join(d, 'upper', 'etc', f), 'x');
    spawnSync('sync'); // its blocks on disk, as a container's some time after it ran: freeing them discards
    return d;
  };
  const syncBlocks: number[] = [];
  const asyncBlocks: number[] = [];
  for (let i = 0; i < 20; i++) {
    const d = fakeDir(i);
    const t = performance.now();
    removeTreeSync(d);
    syncBlocks.push(performance.now() - t);
    const e = fakeDir(100 + i);
    asyncBlocks.push(
      await longestBlock(
        () => removeTree(e),
        () => true,
      ),
    );
  }
  rows.push(
    row(
      '  its deletion on the event loop (before)',
      syncBlocks.sort((a, b) => a - b),
      '-',
      'removeTreeSync, 1 MiB log',
    ),
  );
  rows.push(
    row(
      '  its deletion on the thread pool (now)',
      asyncBlocks.sort((a, b) => a - b),
      '-',
      'removeTree: longest event-loop block',
    ),
  );

  console.log(`\nScale: ${RECORDS} records, on ${base}`);
  console.log(formatTable([['what', 'median ms', 'min–max ms', 'runs', 'target ms', 'note'], ...rows]));
} finally {
  for (const e of engines) {
    for (const c of await e.containers.list().catch(() => []))
      await e.containers.remove(c.id, { force: true }).catch(() => undefined);
    e.close();
  }
  rmSync(base, { recursive: true, force: true });
}
