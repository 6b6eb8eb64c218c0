/**
 * Issue 7's figures, in one run: start-to-exit latency of a container on the default bridge vs
 * `network: 'none'`, and TCP throughput through a published port vs straight to the container's
 * address (both from the host, over the project's own bridge; nothing leaves the machine).
 *
 * Usage: `npx tsx bench/network.ts [runs]` (part of `npm run bench`).
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, Network } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax, timeIt } from './lib/stats.js';

const RUNS = Math.max(30, Number(process.argv[2] ?? 40));
const root = mkdtempSync(join(tmpdir(), 'berth-bench-net-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });
const MiB = 1024 * 1024;

const row = (name: string, s: number[], note = '') => {
  const { min, max } = minMax(s);
  return [name, median(s).toFixed(2), `${min.toFixed(2)}–${max.toFixed(2)}`, String(s.length), note];
};

async function startToExit(network: 'none' | 'bridge'): Promise<void> {
  const c = await Container.run('bench/busybox', ['true'], { engine, network });
  await c.wait();
  await c.remove();
}

/** Reads everything a server sends; returns MiB/s. */
function receive(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    const s = connect({ host, port });
    s.on('data', (d) => (bytes += d.length));
    s.on('end', () => resolve(bytes / MiB / ((performance.now() - t0) / 1000)));
    s.on('error', reject);
  });
}

try {
  const { tar } = await benchRootfs();
  await Image.import(tar, { ref: 'bench/busybox', engine });
  await startToExit('bridge');
  const rows: string[][] = [['what', 'median ms', 'min–max ms', 'runs', 'note']];
  const none = await timeIt(() => startToExit('none'), RUNS, { warmup: 2 });
  const bridge = await timeIt(() => startToExit('bridge'), RUNS, { warmup: 2 });
  rows.push(row("run + wait + remove `true`, network: 'none'", none));
  rows.push(
    row(
      'run + wait + remove `true`, default bridge',
      bridge,
      `adds ${(median(bridge) - median(none)).toFixed(2)} ms (target ≤ 10)`,
    ),
  );
  console.log('\nStart latency on the default bridge vs none');
  console.log(formatTable(rows));

  // A server that sends 256 MiB to each connection (busybox: dd from /dev/zero into nc).
  const size = 256;
  const server = await Container.run(
    'bench/busybox',
    ['sh', '-c', `while true; do dd if=/dev/zero bs=1M count=${size} 2>/dev/null | nc -l -p 5001; done`],
    {
      engine,
      ports: ['127.0.0.1::5001'],
    },
  );
  const info = await server.inspect();
  const hostPort = (await server.port(5001))!;
  const ip = info.networkSettings.ipAddress;
  await new Promise((r) => setTimeout(r, 300));
  const direct: number[] = [];
  const published: number[] = [];
  for (let i = 0; i < 5; i++) {
    direct.push(await receive(ip, 5001));
    await new Promise((r) => setTimeout(r, 100));
    published.push(await receive('127.0.0.1', hostPort));
    await new Promise((r) => setTimeout(r, 100));
  }
  const d = median(direct);
  const p = median(published);
  console.log(
    `\nTCP throughput from the host (${size} MiB per transfer, median of 5), target published ≥ 80% of direct`,
  );
  console.log(
    formatTable([
      ['path', 'MiB/s', 'ratio'],
      [`direct to the container (${ip}:5001)`, d.toFixed(0), '1.00'],
      [`published port (127.0.0.1:${hostPort} → DNAT)`, p.toFixed(0), (p / d).toFixed(2)],
    ]),
  );
  await server.remove({ force: true });
} finally {
  await Network.prune({ engine }).catch(() => undefined);
  engine.close();
  rmSync(root, { recursive: true, force: true });
}
