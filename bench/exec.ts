/**
 * Exec latency (issue 5's figure): median of `exec(['true'])` into a running container, beside
 * `nsenter` into the same namespaces (the floor) and, when installed, `podman exec` / `crun exec`.
 *
 * Usage: `npx tsx bench/exec.ts [runs]` (part of `npm run bench`).
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, Network } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax, timeIt } from './lib/stats.js';

const RUNS = Math.max(30, Number(process.argv[2] ?? 100));
const root = mkdtempSync(join(tmpdir(), 'berth-bench-exec-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });

const row = (name: string, s: number[], note = '') => {
  const { min, max } = minMax(s);
  return [name, median(s).toFixed(2), `${min.toFixed(2)}–${max.toFixed(2)}`, String(s.length), note];
};
const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

try {
  const { tar } = await benchRootfs();
  await Image.import(tar, { ref: 'bench/busybox', engine });
  const c = await Container.run('bench/busybox', ['sleep', '3600'], { engine });
  const pid = (await c.inspect()).state.pid;
  const rows: string[][] = [['what', 'median ms', 'min–max ms', 'runs', 'note']];
  rows.push(
    row(
      "berth exec(['true'])",
      await timeIt(() => c.exec(['true']), RUNS, { warmup: 3 }),
      'berth-exec started with posix_spawn',
    ),
  );
  // What Docker's default seccomp profile costs an exec: the same into a container without it.
  const u = await Container.run('bench/busybox', ['sleep', '3600'], { engine, securityOpt: ['seccomp=unconfined'] });
  rows.push(
    row(
      '  same, container with securityOpt seccomp=unconfined',
      await timeIt(() => u.exec(['true']), RUNS, { warmup: 3 }),
      'no seccomp filter',
    ),
  );
  await u.remove({ force: true });
  // The fallback without a C compiler: a fork of the zygote runs the exec (runExec in init.ts).
  const forkRoot = mkdtempSync(join(tmpdir(), 'berth-bench-exec-fork-'));
  const forkEngine = new Engine({ root: forkRoot, runRoot: join(forkRoot, 'run') });
  try {
    process.env.BERTH_NATIVE_EXEC = '0';
    await Image.import(tar, { ref: 'bench/busybox', engine: forkEngine });
    const f = await Container.run('bench/busybox', ['sleep', '3600'], { engine: forkEngine });
    rows.push(
      row(
        '  same, fork path (BERTH_NATIVE_EXEC=0)',
        await timeIt(() => f.exec(['true']), RUNS, { warmup: 3 }),
        'a fork of the zygote',
      ),
    );
    await f.remove({ force: true });
  } finally {
    delete process.env.BERTH_NATIVE_EXEC;
    await Network.prune({ engine: forkEngine }).catch(() => undefined);
    forkEngine.close();
    rmSync(forkRoot, { recursive: true, force: true });
  }
  rows.push(
    row(
      'nsenter -t PID -m -u -i -n -p -C -r -w true',
      await timeIt(
        () => {
          execFileSync('nsenter', ['-t', String(pid), '-m', '-u', '-i', '-n', '-p', '-C', '-r', '-w', 'true']);
        },
        RUNS,
        { warmup: 3 },
      ),
      'floor',
    ),
  );
  for (const peer of ['podman', 'crun']) if (!which(peer)) rows.push([`${peer} exec`, '-', '-', '0', 'not installed']);
  if (which('crun'))
    rows.push([
      'crun exec',
      '-',
      '-',
      '0',
      'crun cannot run containers on this hybrid-cgroup machine (see bench/run.ts)',
    ]);
  console.log(`\nExec latency into a running container, target median ≤ 5 ms`);
  console.log(formatTable(rows));
  await c.remove({ force: true });
} finally {
  await Network.prune({ engine }).catch(() => undefined);
  engine.close();
  rmSync(root, { recursive: true, force: true });
}
