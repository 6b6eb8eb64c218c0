/**
 * Container logs with rotation (`log: { maxSize, maxFile }`):
 *
 * - `logs({ tail: 100 })` of a log of ~100 MB (5 files of 20 MB, the default cap), with the bytes
 *   it read, against reading the same log whole (`logs()`), once;
 * - how fast output is logged with rotation: the zygote's `LogWriter` alone (64 KiB records,
 *   1 MiB files), and a container writing 256 MiB (`head -c` of /dev/zero) attached (zygote) and
 *   detached (`berth-monitor`), with `log: { maxSize: '10m', maxFile: 3 }`, and what was kept.
 *
 * Usage: `npx tsx bench/logs.ts [runs]`.
 *
 * @module
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image } from '../src/index.js';
import { readLogLines } from '../src/container/logs.js';
import { LogWriter } from '../src/runtime/log-writer.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax } from './lib/stats.js';
import { countingLogIO } from '../test/helpers/log-io.js';

const RUNS = Math.max(5, Number(process.argv[2] ?? 20));
const root = mkdtempSync(join(tmpdir(), 'berth-bench-logs-'));
const MiB = 1024 * 1024;

const stopped = () => Promise.resolve(false);
const ms = (s: number[]) => {
  const { min, max } = minMax(s);
  return [`${median(s).toFixed(2)} ms`, `${min.toFixed(2)}–${max.toFixed(2)} ms`];
};
const kept = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith('output.log'))
    .reduce((a, n) => a + statSync(join(dir, n)).size, 0);

try {
  const rows: string[][] = [['what', 'median', 'min–max', 'note']];

  // ── a large log: writer throughput, then tail and whole reads ──
  const path = join(root, 'big', 'output.log');
  await import('node:fs').then((fs) => fs.mkdirSync(join(root, 'big')));
  const w = new LogWriter(path, { maxSize: 20 * MiB, maxFile: 5 });
  let line = 0;
  const chunk = () => {
    let s = '';
    while (s.length < 64 * 1024 - 16) s += `line ${++line}\n`;
    return Buffer.from(s);
  };
  const chunks = Array.from({ length: 64 }, chunk);
  const t0 = performance.now();
  let written = 0;
  for (let i = 0; written < 110 * MiB; i++) {
    const c = chunks[i % chunks.length]!;
    w.write('stdout', BigInt(i), c);
    written += c.length;
  }
  const writeMs = performance.now() - t0;
  w.close();
  rows.push([
    'LogWriter, 64 KiB records, 20 MiB × 5 files',
    `${(written / MiB / (writeMs / 1000)).toFixed(0)} MiB/s`,
    '',
    `${(written / MiB).toFixed(0)} MiB written, ${(kept(join(root, 'big')) / MiB).toFixed(1)} MiB kept`,
  ]);

  const tails: number[] = [];
  let tailBytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const io = countingLogIO();
    const start = performance.now();
    let n = 0;
    for await (const _ of readLogLines({ path, maxFile: 5, io }, { tail: 100 }, stopped)) n++;
    tails.push(performance.now() - start);
    if (n !== 100) throw new Error(`tail gave ${n} lines`);
    tailBytes = io.bytes;
  }
  rows.push([
    `logs({ tail: 100 }) of ${(kept(join(root, 'big')) / MiB).toFixed(0)} MiB in 5 files`,
    ...ms(tails),
    `${(tailBytes / 1024).toFixed(1)} KiB read`,
  ]);
  {
    const io = countingLogIO();
    const start = performance.now();
    let n = 0;
    for await (const _ of readLogLines({ path, maxFile: 5, io }, {}, stopped)) n++;
    const t = performance.now() - start;
    rows.push([
      'logs() of the same, whole (once)',
      `${t.toFixed(0)} ms`,
      '',
      `${n} lines, ${(io.bytes / MiB).toFixed(0)} MiB read`,
    ]);
  }

  // ── containers writing 256 MiB with log: { maxSize: '10m', maxFile: 3 } ──
  const engine = new Engine({ root: join(root, 'engine'), runRoot: join(root, 'run') });
  try {
    await Image.import((await benchRootfs()).tar, { ref: 'bench/busybox', engine });
    for (const detach of [false, true]) {
      const times: number[] = [];
      let keptBytes = 0;
      for (let i = 0; i < Math.min(RUNS, 5); i++) {
        const c = await Container.create({
          image: 'bench/busybox',
          command: ['head', '-c', String(256 * MiB), '/dev/zero'],
          engine,
          network: 'none',
          detach,
          log: { maxSize: '10m', maxFile: 3 },
        });
        const start = performance.now();
        await c.start();
        await c.wait();
        times.push(performance.now() - start);
        const info = await c.inspect();
        keptBytes = kept(join(info.logPath, '..'));
        await c.remove();
      }
      const rates = times.map((t) => 256 / (t / 1000));
      const { min, max } = minMax(rates);
      rows.push([
        `container writing 256 MiB, ${detach ? 'detached (berth-monitor)' : 'attached (zygote)'}, 10m × 3`,
        `${median(rates).toFixed(0)} MiB/s`,
        `${min.toFixed(0)}–${max.toFixed(0)} MiB/s`,
        `${(keptBytes / MiB).toFixed(1)} MiB kept`,
      ]);
    }
  } finally {
    engine.close();
  }
  console.log(formatTable(rows));
} finally {
  rmSync(root, { recursive: true, force: true });
}
