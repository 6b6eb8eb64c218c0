/**
 * Compares the start and exec figures of this checkout with another one (an earlier commit) in
 * one process, in alternating batches, so that the machine's noise falls on both alike: what an
 * issue's "stay within N ms of today's" asks. Each side has its own engine, root and zygote.
 *
 * Usage, with the other checkout built (`npm run build` there, or at least `npx tsup` and
 * `node scripts/build-monitor.mjs`) and its node_modules in place:
 *
 * ```sh
 * git worktree add /tmp/before <commit> && ln -s "$PWD/node_modules" /tmp/before/node_modules
 * (cd /tmp/before && npx tsup && node scripts/build-monitor.mjs)
 * npx tsx scripts/bench-compare.ts /tmp/before [rounds]
 * ```
 *
 * Prints, per side: the median of create + start + wait + remove of `true` (network none), and
 * of `exec(['true'])` into a running container, each with the CPU time per run in all processes.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchRootfs } from '../bench/lib/busybox.js';
import { formatTable, median } from '../bench/lib/stats.js';

type Berth = typeof import('../src/index.js');

/** CPU time all processes have used so far, in ms (`/proc/stat`, USER_HZ ticks of 10 ms). */
function systemBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return (fields.reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!) * 10;
}

interface Side {
  name: string;
  berth: Berth;
  engine: InstanceType<Berth['Engine']>;
  root: string;
  start: number[];
  exec: number[];
  startCpu: number;
  execCpu: number;
}

async function timeBatch(side: Side, kind: 'start' | 'exec', n: number, fn: () => Promise<unknown>): Promise<void> {
  const cpu = systemBusyMs();
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn();
    side[kind].push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  side[kind === 'start' ? 'startCpu' : 'execCpu'] += systemBusyMs() - cpu;
}

async function main(): Promise<void> {
  const other = process.argv[2];
  if (!other) throw new Error('usage: npx tsx scripts/bench-compare.ts <other checkout> [rounds]');
  const rounds = Math.max(2, Number(process.argv[3] ?? 12));
  const batch = 8;
  const { tar } = await benchRootfs();
  const sides: Side[] = [];
  for (const [name, path] of [
    [`other (${other})`, join(resolve(other), 'src/index.ts')],
    ['this checkout', join(import.meta.dirname, '../src/index.ts')],
  ] as const) {
    const berth = (await import(pathToFileURL(path).href)) as Berth;
    const root = mkdtempSync(join(tmpdir(), 'berth-compare-'));
    const engine = new berth.Engine({ root, runRoot: join(root, 'run') });
    await berth.Image.import(tar, { ref: 'bench/busybox', engine });
    sides.push({ name, berth, engine, root, start: [], exec: [], startCpu: 0, execCpu: 0 });
  }
  const runTrue = async (s: Side) => {
    const c = await s.berth.Container.create({
      image: 'bench/busybox',
      command: ['true'],
      network: 'none',
      engine: s.engine,
    });
    await c.start();
    await c.wait();
    await c.remove();
  };
  const order = (r: number) => (r % 2 ? [...sides].reverse() : sides);
  for (const s of sides) for (let i = 0; i < 3; i++) await runTrue(s);
  for (let r = 0; r < rounds; r++) for (const s of order(r)) await timeBatch(s, 'start', batch, () => runTrue(s));
  const running = await Promise.all(
    sides.map((s) => s.berth.Container.run('bench/busybox', ['sleep', '600'], { network: 'none', engine: s.engine })),
  );
  for (const c of running) for (let i = 0; i < 3; i++) await c.exec(['true']);
  for (let r = 0; r < rounds; r++)
    for (const s of order(r)) await timeBatch(s, 'exec', batch, () => running[sides.indexOf(s)]!.exec(['true']));
  for (const c of running) await c.remove({ force: true });
  const rows: string[][] = [['side', 'start median ms', 'start CPU ms', 'exec median ms', 'exec CPU ms', 'runs each']];
  for (const s of sides) {
    rows.push([
      s.name,
      median(s.start).toFixed(2),
      (s.startCpu / s.start.length).toFixed(1),
      median(s.exec).toFixed(2),
      (s.execCpu / s.exec.length).toFixed(1),
      String(s.start.length),
    ]);
  }
  console.log(formatTable(rows));
  for (const s of sides) rmSync(s.root, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
