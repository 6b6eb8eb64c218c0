/**
 * What `userns` costs a start: create + start + wait + remove of `true` from the busybox image,
 * with network `none`, without and with `userns: 'auto'`, alternated run by run (median, min–max).
 * The difference is the user namespace made by berth-init (a clone, two map writes), the
 * idmapped clones of the layers and the container's directory, and the setns.
 *
 * Usage: `npx tsx bench/userns.ts [runs]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax, timeIt } from './lib/stats.js';

const RUNS = Math.max(20, Number(process.argv[2] ?? 40));
const root = mkdtempSync(join(tmpdir(), 'berth-bench-userns-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });

try {
  await Image.import((await benchRootfs()).tar, { ref: 'bench/busybox', engine });
  const once = async (userns: boolean) => {
    const c = await Container.run('bench/busybox', ['true'], {
      engine,
      network: 'none',
      ...(userns ? { userns: 'auto' as const } : {}),
    });
    await c.wait();
    await c.remove();
  };
  const plain: number[] = [];
  const mapped: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // One run each in turn (after a warm-up run), so that both see the same load.
    plain.push(...(await timeIt(() => once(false), 1, { warmup: i === 0 ? 2 : 0 })));
    mapped.push(...(await timeIt(() => once(true), 1, { warmup: i === 0 ? 2 : 0 })));
  }
  const row = (what: string, s: number[]) => {
    const { min, max } = minMax(s);
    return [what, `${median(s).toFixed(1)} ms`, `${min.toFixed(1)}–${max.toFixed(1)} ms`];
  };
  console.log(
    formatTable([
      ['what', 'median', 'min–max'],
      row('network none', plain),
      row("network none, userns: 'auto'", mapped),
    ]),
  );
} finally {
  engine.close();
  rmSync(root, { recursive: true, force: true });
}
