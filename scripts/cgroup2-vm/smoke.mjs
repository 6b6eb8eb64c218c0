/**
 * The cgroup v2 smoke program, run in the cgroup2 guest (scripts/cgroup2-vm/test.sh) against the
 * built package (dist/). Each step checks what the kernel holds in the container's own cgroup
 * directory, `/sys/fs/cgroup/berth/<id>`, not only what berth reports: limits in `memory.max`,
 * `cpu.max` and `pids.max`, pause through `cgroup.freeze`, stats, live updates, an OOM kill
 * reported as such, and no cgroup left after removal. Exits non-zero at the first failed check.
 *
 * Usage (as root, on a cgroup-v2-only machine): `node scripts/cgroup2-vm/smoke.mjs`
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, buildBusyboxRootfs } from '../../dist/index.js';

const CGROUP = '/sys/fs/cgroup';
const MiB = 1024 * 1024;
let failures = 0;

function check(what, actual, expected) {
  const ok = actual === expected;
  if (!ok) failures++;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${what}: ${JSON.stringify(actual)}${ok ? '' : ` (expected ${JSON.stringify(expected)})`}`,
  );
}

const read = (path) => readFileSync(path, 'utf8').trim();
/** The `frozen` line of a cgroup's `cgroup.events`. */
const frozen = (dir) => /^frozen (\d)$/m.exec(readFileSync(join(dir, 'cgroup.events'), 'utf8'))?.[1];

async function smoke(root) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  check(
    '/sys/fs/cgroup is cgroup2',
    mounts.some((l) => l.split(' ')[4] === CGROUP && l.includes(' - cgroup2 ')),
    true,
  );
  check('cgroup v1 hierarchies mounted', mounts.filter((l) => l.includes(' - cgroup ')).length, 0);
  const { tar } = await buildBusyboxRootfs(join(root, 'image'));
  // Closed by the caller (`await using` needs Node 22).
  const engine = new Engine({ root: join(root, 'state'), runRoot: join(root, 'run') });
  engines.push(engine);
  await Image.import(tar, { ref: 'smoke/busybox:latest', engine });
  const none = { network: 'none', engine };

  // Limits land in the container's own v2 directory.
  const c = await Container.run('smoke/busybox:latest', ['sleep', '300'], {
    ...none,
    resources: { memory: '64m', cpus: 0.5, pids: 20 },
  });
  const id = await c.id();
  const dir = join(CGROUP, 'berth', id);
  check('memory.max', read(join(dir, 'memory.max')), String(64 * MiB));
  check('cpu.max', read(join(dir, 'cpu.max')), '50000 100000');
  check('pids.max', read(join(dir, 'pids.max')), '20');
  check(
    'the controllers berth enabled for its parent',
    read(join(CGROUP, 'berth', 'cgroup.subtree_control'))
      .split(' ')
      .filter((x) => ['cpu', 'memory', 'pids'].includes(x))
      .join(' '),
    'cpu memory pids',
  );
  check(
    "the container's /proc/self/cgroup (its own cgroup namespace)",
    (await c.exec(['cat', '/proc/self/cgroup'])).stdout,
    '0::/\n',
  );
  const procs = () => readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').length;
  const before = procs();
  const exec = c.exec(['sleep', '10']);
  let during = before;
  for (let i = 0; i < 200 && during === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    during = procs();
  }
  check("an exec's process joins the container's cgroup (processes in cgroup.procs)", during, before + 1);
  await exec;

  // Pause and unpause through cgroup.freeze.
  await c.pause();
  check('status after pause', (await c.inspect()).state.status, 'paused');
  check('cgroup.freeze after pause', read(join(dir, 'cgroup.freeze')), '1');
  check('cgroup.events frozen after pause', frozen(dir), '1');
  await c.unpause();
  check('cgroup.freeze after unpause', read(join(dir, 'cgroup.freeze')), '0');
  check('status after unpause', (await c.inspect()).state.status, 'running');

  // Stats read from the v2 files.
  for await (const s of c.stats({ interval: 10 })) {
    check('stats memory limit', s.memory.limit, 64 * MiB);
    check('stats pids current ≥ 1', s.pids.current >= 1, true);
    check('stats pids limit', s.pids.limit, 20);
    check('stats memory usage > 0', s.memory.usage > 0, true);
    break;
  }

  // Live updates.
  await c.update({ resources: { memory: '128m', cpus: 1, pids: 30 } });
  check('memory.max after update', read(join(dir, 'memory.max')), String(128 * MiB));
  check('cpu.max after update', read(join(dir, 'cpu.max')), '100000 100000');
  check('pids.max after update', read(join(dir, 'pids.max')), '30');

  await c.remove({ force: true });
  check('the cgroup directory after remove', existsSync(dir), false);

  // An OOM kill, reported as one.
  const oom = await Container.run(
    'smoke/busybox:latest',
    ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'],
    { ...none, resources: { memory: '32m', memorySwap: '32m' } },
  );
  const oomDir = join(CGROUP, 'berth', await oom.id());
  check('exit code of the OOM-killed container', (await oom.wait()).exitCode, 137);
  check('state.oomKilled', (await oom.inspect()).state.oomKilled, true);
  await oom.remove();
  check("the OOM-killed container's cgroup after remove", existsSync(oomDir), false);

  await engine.close();
  engines.length = 0;
  const left = existsSync(join(CGROUP, 'berth'))
    ? readdirSync(join(CGROUP, 'berth'), { withFileTypes: true }).filter((e) => e.isDirectory())
    : [];
  check('container cgroups left under /sys/fs/cgroup/berth', left.length, 0);
}

const root = await mkdtemp(join(tmpdir(), 'berth-cgroup2-smoke-'));
/** The engine a failed smoke left open. */
const engines = [];
try {
  await smoke(root);
} catch (e) {
  failures++;
  console.error('FAIL', e);
} finally {
  for (const engine of engines) await engine.close().catch((e) => console.error('FAIL closing the engine', e));
  await rm(root, { recursive: true, force: true });
}
console.log(failures === 0 ? 'cgroup2 smoke: all checks passed' : `cgroup2 smoke: ${failures} check(s) failed`);
process.exitCode = failures === 0 ? 0 : 1;
