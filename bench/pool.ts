/**
 * Pools (issue 16): how long `pool.take()` takes to hand out a started container (target: median
 * ≤ 3 ms), beside a plain `Container.run` of the same spec and the bare `unshare` floor, in one
 * run. Each take is measured alone; what follows it (removing the taken container, the pool's
 * refill in the background) is not, except where a row says so:
 *
 * - *pool full*: each take waits until the refill of the previous one has ended;
 * - *refill running*: with the pool full, one take (not measured) and its container's removal, then
 *   the measured take at once, while the first take's refill creates and starts its replacement
 *   in the same process (its CPU and event loop shared with the take);
 * - *pool empty*: `size` takes back to back and then one more: a take that creates its container
 *   while the refill the first takes started makes `size` members beside it.
 *
 * Then snapshots: `c.snapshot()` of a container whose file system holds 1 MB and 100 MB, and a
 * fork of each started (`snap.fork()`), beside a plain run (`lib/snapshot-fork.ts`): a fork's
 * time must not grow with the snapshot's size. The root is in the system's temp directory, whose
 * file system decides whether the snapshot's copy can use reflinks.
 *
 * Usage: `npx tsx bench/pool.ts [runs]` (part of `npm run bench`).
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, type ContainerPool } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { benchSnapshotFork } from './lib/snapshot-fork.js';
import { UNSHARE_FLOOR, unshareTrue } from './lib/floor.js';
import { formatTable, median, minMax, percentile, timeIt } from './lib/stats.js';

const RUNS = Math.max(20, Number(process.argv[2] ?? 50));
const SIZE = 4;
const root = mkdtempSync(join(tmpdir(), 'berth-bench-pool-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });
const spec = { image: 'bench/busybox', command: ['sleep', '600'], network: 'none' as const, engine };
/** `Container.run`'s options for the same spec (pool members are detached). */
const runOptions = { engine, network: 'none' as const, detach: true };

/** A table row: median, p95 and min–max of `samples` (ms). */
function row(what: string, samples: number[], note = ''): string[] {
  const { min, max } = minMax(samples);
  const ms = (x: number) => x.toFixed(2);
  return [
    what,
    ms(median(samples)),
    ms(percentile(samples, 95)),
    `${ms(min)}–${ms(max)}`,
    String(samples.length),
    note,
  ];
}

/** Resolves once `pool` has `SIZE` idle members again. */
async function refilled(pool: ContainerPool<Container>): Promise<void> {
  while (pool.idle < SIZE) await new Promise((r) => setTimeout(r, 5));
}

/** The duration of one `get()` (ms), and the container it gave (the caller removes it). */
async function timed(get: () => Promise<Container>): Promise<[number, Container]> {
  const t0 = process.hrtime.bigint();
  const c = await get();
  return [Number(process.hrtime.bigint() - t0) / 1e6, c];
}

/** `runs` containers from `get`, each after `before()`; each is removed after its measure. */
async function handouts(
  runs: number,
  before: () => Promise<unknown>,
  get: () => Promise<Container>,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    await before();
    const [ms, c] = await timed(get);
    samples.push(ms);
    await c.remove({ force: true });
  }
  return samples;
}

/** Takes that find the pool empty: `SIZE` taken at once, then the measured one creates its own. */
async function emptyTakes(pool: ContainerPool<Container>, runs: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    await refilled(pool);
    const held = await Promise.all(Array.from({ length: SIZE }, () => pool.take()));
    const [ms, c] = await timed(() => pool.take());
    samples.push(ms);
    for (const x of [...held, c]) await x.remove({ force: true });
  }
  return samples;
}

async function main(): Promise<void> {
  const { tar } = await benchRootfs();
  await Image.import(tar, { ref: 'bench/busybox', engine });
  // Warm: the zygote starts once per engine.
  await (await Container.run(spec.image, spec.command, runOptions)).remove({ force: true });

  const t0 = performance.now();
  const pool = await Container.pool(spec, { size: SIZE });
  const openMs = performance.now() - t0;
  try {
    const take = () => pool.take();
    const full = await handouts(RUNS, () => refilled(pool), take);
    const busy = await handouts(
      RUNS,
      async () => {
        await refilled(pool);
        await (await pool.take()).remove({ force: true }); // its refill is running when the measured take comes
      },
      take,
    );
    const empty = await emptyTakes(pool, Math.max(10, RUNS >> 2));
    await refilled(pool); // no refill beside the runs
    const run = await handouts(
      RUNS,
      async () => undefined,
      () => Container.run(spec.image, spec.command, runOptions),
    );
    const floor = await timeIt(unshareTrue, RUNS, { warmup: 2 });
    console.log(`\nPool take (size ${SIZE}, busybox \`sleep 600\`, network none), target median ≤ 3 ms`);
    console.log(
      formatTable([
        ['what', 'median ms', 'p95 ms', 'min–max ms', 'runs', 'note'],
        row('pool.take(), pool full', full, 'a readdir, a rename, a /proc read'),
        row('pool.take(), refill running', busy, "another take's refill in this process"),
        row('pool.take(), pool empty', empty, 'creates its own, beside the refill of the takes before'),
        row('Container.run, same spec, detached', run, 'create + start: what a take saves'),
        row(UNSHARE_FLOOR, floor, 'floor: namespaces only, no rootfs'),
        ['Container.pool() open, filled to size', openMs.toFixed(2), '', '', '1', `${SIZE} members made`],
      ]),
    );
  } finally {
    await pool.close();
  }
  const snapRuns = Math.max(5, RUNS >> 2);
  const rows = await benchSnapshotFork(engine, { image: 'bench/busybox:latest', runs: snapRuns });
  console.log(`\nSnapshot and fork (median of ${snapRuns} runs, network none): fork must not grow with the size`);
  console.log(
    formatTable([
      ['file system', 'snapshot ms', 'fork + start ms', 'plain run ms'],
      ...rows.map((r) => [`${r.mb} MB`, r.snapshotMs.toFixed(1), r.forkStartMs.toFixed(1), r.plainRunMs.toFixed(1)]),
    ]),
  );
}

try {
  await main();
} finally {
  engine.close();
  rmSync(root, { recursive: true, force: true });
}
