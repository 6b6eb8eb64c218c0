/**
 * The build context's file work (issue 15): `digestSources` of a context of 5,000 small files
 * plus one 50 MB file, cold (every file read) and warm (the hash cache answers), and `copyInto`
 * throughput of the 50 MB file and of the 5,000 files into a fresh directory.
 * Targets: a fully cached rebuild ≤ 100 ms (the warm digest is its file-system part), context
 * transfer ≥ 500 MB/s.
 *
 * Runs on the system's temp directory and, when there, on `/dev/shm` (tmpfs: the code's own cost
 * without the disk), beside `cp -a` of the same trees.
 *
 * Usage: `npx tsx bench/build-context.ts [runs]` (part of `npm run bench`).
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { copyInto, digestSources } from '../src/image/build/context/index.js';
import { formatTable, median, minMax, timeIt } from './lib/stats.js';

const RUNS = Math.max(3, Number(process.argv[2] ?? 5));
const SMALL = 5000;
const BIG = 50 << 20;
async function bench(where: string): Promise<void> {
  const base = mkdtempSync(join(where, 'berth-bench-context-'));
  try {
    const ctx = join(base, 'context');
    for (let d = 0; d < 50; d++) {
      mkdirSync(join(ctx, 'src', `d${d}`), { recursive: true });
      for (let f = 0; f < SMALL / 50; f++)
        writeFileSync(join(ctx, 'src', `d${d}`, `f${f}.js`), `export const v = ${d * 1000 + f};\n`);
    }
    writeFileSync(join(ctx, 'big.bin'), randomBytes(BIG));
    await new Promise((r) => setTimeout(r, 200)); // past the hash cache's racy window
    const sources = ['.'];
    let n = 0;
    const cold = await timeIt(
      () => digestSources({ sourceRoot: ctx, sources, cacheDir: join(base, `cold-${n++}`) }),
      RUNS,
    );
    const cacheDir = join(base, 'warm');
    await digestSources({ sourceRoot: ctx, sources, cacheDir });
    const warm = await timeIt(() => digestSources({ sourceRoot: ctx, sources, cacheDir }), RUNS, { warmup: 1 });
    const copy = (src: string) => async () => {
      const dest = join(base, `dest-${n++}`);
      mkdirSync(dest);
      await copyInto({ sourceRoot: ctx, sources: [src], destRoot: dest, dest: '/app/' });
      rmSync(dest, { recursive: true, force: true });
    };
    const big = await timeIt(copy('big.bin'), RUNS, { warmup: 1 });
    const small = await timeIt(copy('src'), RUNS, { warmup: 1 });
    const cp = (src: string) => () => {
      const dest = join(base, `cp-${n++}`);
      if (spawnSync('cp', ['-a', join(ctx, src), dest]).status !== 0) throw new Error('cp -a failed');
      rmSync(dest, { recursive: true, force: true });
    };
    const cpBig = await timeIt(cp('big.bin'), RUNS, { warmup: 1 });
    const cpSmall = await timeIt(cp('src'), RUNS, { warmup: 1 });
    const row = (name: string, s: number[], mb?: number) => {
      const { min, max } = minMax(s);
      const per = (x: number) => x / (median(s) / 1000);
      const rate = mb === undefined ? '' : mb < 1 ? `${per(SMALL).toFixed(0)} files/s` : `${per(mb).toFixed(0)} MB/s`;
      return [name, median(s).toFixed(1), `${min.toFixed(1)}–${max.toFixed(1)}`, String(s.length), rate];
    };
    const smallMb = 0; // rated in files per second
    console.log(`build context: ${SMALL} small files + one ${BIG >> 20} MiB file (${where})`);
    console.log(
      formatTable([
        ['operation', 'median ms', 'range ms', 'runs', 'throughput'],
        row('digestSources, cold (no hash cache)', cold, (BIG + SMALL * 24) / 1e6),
        row('digestSources, warm (hash cache)', warm),
        row(`copyInto ${BIG >> 20} MiB file`, big, BIG / 1e6),
        row(`copyInto ${SMALL} small files`, small, smallMb),
        row(`cp -a ${BIG >> 20} MiB file (peer)`, cpBig, BIG / 1e6),
        row(`cp -a ${SMALL} small files (peer)`, cpSmall, smallMb),
      ]),
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

for (const where of [tmpdir(), '/dev/shm']) if (existsSync(where)) await bench(where);
