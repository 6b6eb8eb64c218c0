import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image } from '/work/main/src/index.js';
import { benchRootfs } from '/work/main/bench/lib/busybox.js';
const root = mkdtempSync(join(tmpdir(), 'berth-ph-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });
const { tar } = await benchRootfs();
await Image.import(tar, { ref: 'b/b', engine });
const ph: Record<string, number[]> = { create: [], start: [], wait: [], remove: [], total: [] };
for (let i = 0; i < 40; i++) {
  const t0 = performance.now();
  const c = await Container.create({ image: 'b/b', command: ['true'], engine, network: 'none' });
  const t1 = performance.now();
  await c.start();
  const t2 = performance.now();
  await c.wait();
  const t3 = performance.now();
  await c.remove();
  const t4 = performance.now();
  if (i < 5) continue;
  ph.create!.push(t1 - t0); ph.start!.push(t2 - t1); ph.wait!.push(t3 - t2); ph.remove!.push(t4 - t3); ph.total!.push(t4 - t0);
}
const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!.toFixed(2);
console.log(Object.entries(ph).map(([k, v]) => `${k} ${med(v)}`).join('  '));
engine.close();
rmSync(root, { recursive: true, force: true });
