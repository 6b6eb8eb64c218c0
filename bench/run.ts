/**
 * The foundation's figures, measured in one run:
 *
 * 1. create + start + wait + remove of `true` from the busybox image (median, min–max of
 *    ≥ 30 runs), beside a bare `unshare --pid --fork --mount --uts --ipc --net --mount-proc true`
 *    and, when installed, `crun run` of an equivalent bundle;
 * 2. 50 containers run 4 at a time, in all;
 * 3. the resident memory (PSS) berth adds per running idle container.
 *
 * Usage: `npx tsx bench/run.ts [runs]` (part of `npm run bench`).
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, Network } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax, pssOfPid, timeIt } from './lib/stats.js';
import { UNSHARE_FLOOR, unshareTrue } from './lib/floor.js';

const RUNS = Math.max(30, Number(process.argv[2] ?? 50));
const root = mkdtempSync(join(tmpdir(), 'berth-bench-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });
// The same with its volatile state on a tmpfs, where `/run` (the default runRoot's parent) is on
// systemd distributions; on this VM /run is a directory on the root's ext4.
const shmRun = mkdtempSync('/dev/shm/berth-bench-run-');
const tmpfsEngine = new Engine({ root: join(root, 'tmpfs-run'), runRoot: shmRun });

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * CPU time every process on the machine has used so far, in ms (`/proc/stat`, all CPUs, in
 * USER_HZ ticks of 10 ms): over many runs, the CPU one container costs in all its processes
 * (engine, zygote, init, kernel work). On a 2-core machine that is busy during the benchmark,
 * this, not any single process, is what the wall time follows.
 */
function systemBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) * 10;
}

/** `timeIt` of `fn`, and the CPU time per call in all processes (see {@link systemBusyMs}). */
async function timeWithCpu(fn: () => unknown, runs: number): Promise<{ samples: number[]; cpu: string }> {
  const before = systemBusyMs();
  const samples = await timeIt(fn, runs, { warmup: 2 });
  return { samples, cpu: `${((systemBusyMs() - before) / (runs + 2)).toFixed(1)} ms CPU each (all processes)` };
}

function row(name: string, samples: number[], note = ''): Array<string> {
  const { min, max } = minMax(samples);
  return [name, median(samples).toFixed(2), `${min.toFixed(2)}–${max.toFixed(2)}`, String(samples.length), note];
}

/** The foundation's figure: loopback only (`network: 'none'`), as the issue measures it. */
async function runTrue(network: 'none' | 'bridge' = 'none', on = engine, securityOpt: string[] = []): Promise<void> {
  const c = await Container.create({ image: 'bench/busybox', command: ['true'], engine: on, network, securityOpt });
  await c.start();
  await c.wait();
  await c.remove();
}

function crunBundle(rootfsDir: string): string {
  const dir = join(root, 'crun-bundle');
  mkdirSync(dir, { recursive: true });
  cpSync(rootfsDir, join(dir, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  execFileSync('crun', ['spec'], { cwd: dir });
  const spec = JSON.parse(execFileSync('cat', [join(dir, 'config.json')]).toString()) as {
    process: { args: string[]; terminal: boolean };
  };
  spec.process.args = ['true'];
  spec.process.terminal = false;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}

/**
 * PSS of the zygote plus its prepared templates (forked children that have not exec'd yet): they
 * share pages, so the zygote's own PSS alone moves as templates come and go.
 */
async function zygoteAndTemplatesPss(zpid: number): Promise<number> {
  const comm = (pid: number | string) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  const mine = comm(zpid);
  let total = await pssOfPid(zpid);
  for (const task of readdirSync(`/proc/${zpid}/task`)) {
    let children: string[];
    try {
      children = readFileSync(`/proc/${zpid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      continue;
    }
    for (const c of children) {
      try {
        if (comm(c) === mine) total += await pssOfPid(Number(c));
      } catch {
        // Gone in between.
      }
    }
  }
  return total;
}

async function main(): Promise<void> {
  const { tar, dir } = await benchRootfs();
  await Image.import(tar, { ref: 'bench/busybox', engine });
  await Image.import(tar, { ref: 'bench/busybox', engine: tmpfsEngine });
  await runTrue('none', tmpfsEngine);
  await runTrue(); // warm: the zygote starts once per engine
  await runTrue('bridge'); // and the default network is created on first use

  const rows: string[][] = [['what', 'median ms', 'min–max ms', 'runs', 'note']];
  const none = await timeWithCpu(() => runTrue(), RUNS);
  rows.push(row('berth create+start+wait+remove `true`', none.samples, `network none (loopback); ${none.cpu}`));
  // What Docker's default seccomp profile costs a start: the same without it.
  const unconfined = await timeWithCpu(() => runTrue('none', engine, ['seccomp=unconfined']), RUNS);
  rows.push(row('  same, securityOpt seccomp=unconfined', unconfined.samples, `no seccomp filter; ${unconfined.cpu}`));
  rows.push(
    row(
      '  same, on the default bridge',
      await timeIt(() => runTrue('bridge'), RUNS, { warmup: 2 }),
      'veth + address + route',
    ),
  );
  rows.push(
    row(
      '  same, network none, runRoot on a tmpfs',
      await timeIt(() => runTrue('none', tmpfsEngine), RUNS, { warmup: 2 }),
      '/run is a tmpfs on systemd distributions; not on this VM',
    ),
  );
  const floor = await timeWithCpu(unshareTrue, RUNS);
  rows.push(row(UNSHARE_FLOOR, floor.samples, `floor: namespaces only, no rootfs; ${floor.cpu}`));
  if (which('crun')) {
    const bundle = crunBundle(dir);
    let n = 0;
    const crun = () =>
      execFileSync('crun', ['run', '--bundle', bundle, `berth-bench-${process.pid}-${n++}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    try {
      crun();
      rows.push(row('crun run (same rootfs, no overlay)', await timeIt(crun, RUNS, { warmup: 2 }), 'peer'));
    } catch (e) {
      const why = String((e as { stderr?: Buffer }).stderr ?? e)
        .trim()
        .split('\n')[0];
      rows.push(['crun run', '-', '-', '0', `installed, cannot run here: ${why}`]);
    }
  } else {
    rows.push(['crun run', '-', '-', '0', 'not installed']);
  }
  console.log('\nContainer start (create + start + wait + remove of `true`), target median ≤ 15 ms');
  console.log(formatTable(rows));

  // 50 containers, 4 at a time.
  const batches: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < 50) {
          next++;
          await runTrue();
        }
      }),
    );
    batches.push(performance.now() - t0);
  }
  console.log('\n50 containers run 4 at a time (create+start+wait+remove each), target ≤ 1000 ms');
  console.log(
    formatTable([
      ['what', 'median ms', 'min–max ms', 'repeats'],
      row('50 × `true`, concurrency 4', batches).slice(0, 4),
    ]),
  );

  // Memory per running idle container: PSS of this process and the zygote, before and after.
  const N = 50;
  const zpid = engine.zygote.pid!;
  const gc = (globalThis as { gc?: () => void }).gc;
  // Settled samples (the median of 5, after full collections): a single reading of ~150 MiB moves
  // by a few MiB from one moment to the next, as much as N containers could add.
  const settled = async (): Promise<[number, number]> => {
    const zs: number[] = [];
    const es: number[] = [];
    for (let i = 0; i < 5; i++) {
      gc?.();
      await engine.zygote.collectGarbage();
      await new Promise((r) => setTimeout(r, 100));
      zs.push(await zygoteAndTemplatesPss(zpid));
      es.push(await pssOfPid(process.pid));
    }
    return [median(zs), median(es)];
  };
  const [z0, e0] = await settled();
  const pss0 = z0 + e0;
  const idle = [];
  for (let i = 0; i < N; i++)
    idle.push(await Container.run('bench/busybox', ['sleep', '600'], { engine, network: 'none' }));
  await new Promise((r) => setTimeout(r, 300));
  const [z1, e1] = await settled();
  const pss1 = z1 + e1;
  const containerPss = await Promise.all(
    idle.map(async (c) => {
      const info = await c.inspect();
      if (!info.state.running)
        throw new Error(
          `idle container ${info.id.slice(0, 12)} is not running: ${JSON.stringify(info.state)} ${await c.logs()}`,
        );
      return pssOfPid(info.state.pid);
    }),
  );
  for (const c of idle) await c.remove({ force: true });
  console.log(`\nResident memory berth adds per running idle container (${N} containers), target ≤ 1024 KiB PSS`);
  console.log(
    formatTable([
      ['what', 'KiB'],
      ['engine process + zygote, before', String(pss0)],
      ['engine process + zygote, with containers', String(pss1)],
      ['berth per container ((after − before) / N)', ((pss1 - pss0) / N).toFixed(0)],
      ['  of which the zygote and its prepared templates', ((z1 - z0) / N).toFixed(0)],
      ['  of which the engine process', ((e1 - e0) / N).toFixed(0)],
      ['the container’s own process (sleep), median, not berth’s', String(median(containerPss))],
    ]),
  );
}

try {
  await main();
} finally {
  await Network.prune({ engine }).catch(() => undefined);
  engine.close();
  tmpfsEngine.close();
  rmSync(shmRun, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
}
