/**
 * Detached containers (issue 5's memory figure): the resident memory (PSS) of what runs beside
 * each detached idle container — berth's monitor — once the engine process that started them
 * has let go of them (its zygote is gone), beside the peers' per-container helpers when
 * installed (podman's conmon, containerd's shim). Also the start cost of a detached container.
 *
 * Usage: `npx tsx bench/detach.ts [containers]` (part of `npm run bench`).
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax, pssOfPid, timeIt } from './lib/stats.js';

const N = Math.max(5, Number(process.argv[2] ?? 20));
const root = mkdtempSync(join(tmpdir(), 'berth-bench-detach-'));
const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const parentOf = (pid: number) => Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
const rssOf = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

const first = new Engine({ root, runRoot: join(root, 'run') });
let engine = first;
try {
  const { tar } = await benchRootfs();
  await Image.import(tar, { ref: 'bench/busybox', engine });
  const row = (name: string, s: number[], note = '') => {
    const { min, max } = minMax(s);
    return [name, median(s).toFixed(2), `${min.toFixed(2)}–${max.toFixed(2)}`, String(s.length), note];
  };
  const cycle = (detach: boolean) => async () => {
    const c = await Container.create({ image: 'bench/busybox', command: ['true'], engine, network: 'none', detach });
    await c.start();
    await c.wait();
    await c.remove();
  };
  const attached = await timeIt(cycle(false), 30, { warmup: 3 });
  const detached = await timeIt(cycle(true), 30, { warmup: 3 });
  console.log('\nStart cost: create+start+wait+remove of `true`, network none');
  console.log(
    formatTable([
      ['what', 'median ms', 'min–max ms', 'runs', 'note'],
      row('owned by the engine (default)', attached),
      row('detach: true', detached, 'fork + exec of the monitor'),
    ]),
  );

  const ids: string[] = [];
  for (let i = 0; i < N; i++)
    ids.push(
      await (await Container.run('bench/busybox', ['sleep', '600'], { engine, network: 'none', detach: true })).id(),
    );
  // The creator lets go: its zygote ends; only the monitors stay beside the containers.
  first.close();
  await new Promise((r) => setTimeout(r, 500));
  engine = new Engine({ root, runRoot: join(root, 'run') });
  const monitors = await Promise.all(
    ids.map(async (id) => {
      const info = await new Container(id, { engine }).inspect();
      if (!info.state.running) throw new Error(`detached container ${id.slice(0, 12)} is not running`);
      return parentOf(info.state.pid);
    }),
  );
  const pss = await Promise.all(monitors.map((p) => pssOfPid(p)));
  const rss = monitors.map(rssOf);
  const exe = readFileSync(`/proc/${monitors[0]}/cmdline`, 'utf8').split('\0')[0]!;
  console.log(
    `\nMemory beside each detached idle container (${N} containers, their creator gone), target ≤ 1024 KiB PSS`,
  );
  console.log(
    formatTable([
      ['what', 'PSS KiB (median)', 'PSS KiB min–max', 'RSS KiB (median)', 'note'],
      [
        'berth-monitor',
        String(median(pss)),
        `${Math.min(...pss)}–${Math.max(...pss)}`,
        String(median(rss)),
        `${readFileSync(exe).length} bytes, static, no libc`,
      ],
      [
        'podman conmon',
        '-',
        '-',
        '-',
        which('conmon') ? 'installed, not measured here' : 'not installed (0.5–1 MiB reported)',
      ],
      [
        'containerd-shim-runc-v2',
        '-',
        '-',
        '-',
        which('containerd-shim-runc-v2') ? 'installed, not measured here' : 'not installed (3–12 MiB reported)',
      ],
    ]),
  );
  for (const id of ids) await new Container(id, { engine }).remove({ force: true });
} finally {
  engine.close();
  first.close();
  rmSync(root, { recursive: true, force: true });
}
