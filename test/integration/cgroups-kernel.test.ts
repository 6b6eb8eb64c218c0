/**
 * The cgroup driver on the real kernel (v1 or hybrid here; v2 when the machine has it): limits
 * that the kernel enforces on real busybox processes, freezing, stats, OOM detection, updates and
 * removal. A test process is moved into the cgroup by writing its pid to the `cgroup.procs` files
 * (the container init writes `0` there itself). Every cgroup is removed after each test, also
 * when the test fails, and none may be left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createCgroupDriver,
  detectCgroups,
  parseResources,
  type CgroupDriver,
  type CgroupLimits,
} from '../../src/runtime/cgroups/index.js';
import { containerCgroupOptions } from '../../src/container/defaults.js';

const layout = detectCgroups();
const usable = layout.mode !== 'none' && process.getuid?.() === 0;
if (!usable)
  console.warn(
    `skipping cgroup integration tests: ${layout.mode === 'none' ? 'no usable cgroup hierarchy' : 'not root'}`,
  );

const MiB = 1024 * 1024;
let driver: CgroupDriver;
const made: string[] = [];
const children: ChildProcess[] = [];
let seq = 0;

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const ids = made.splice(0);
  for (const id of ids) await driver.destroy(id);
  for (const id of ids) for (const p of driver.paths(id)) expect(existsSync(p), `${p} left behind`).toBe(false);
});

async function cgroup(limits: CgroupLimits): Promise<{ id: string; procsFiles: string[]; paths: string[] }> {
  driver ??= createCgroupDriver();
  const id = `cgtest-${process.pid}-${++seq}`;
  made.push(id);
  return { id, ...(await driver.create(id, limits, containerCgroupOptions(false))) };
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts busybox sh, moves it into the cgroup, then lets it run `script`. */
async function runIn(procsFiles: string[], script: string): Promise<Proc> {
  const child = spawn('/bin/busybox', ['sh', '-c', `read _go; ${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal })), // 'close': output drained too
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  for (const f of procsFiles) writeFileSync(f, String(child.pid));
  child.stdin!.write('go\n');
  return { child, output: () => out, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The state letter of a process in /proc (`Z` for a zombie), or `gone`. */
function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
}

describe.skipIf(!usable)(`cgroup driver on the real kernel (${layout.mode})`, () => {
  it('makes one cgroup per hierarchy under the berth parent and removes it', async () => {
    const { id, paths, procsFiles } = await cgroup(parseResources({ memory: '32m', pids: 20 }));
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) {
      expect(p).toMatch(new RegExp(`/berth/${id}$`));
      expect(existsSync(p)).toBe(true);
    }
    expect(procsFiles.every((f) => f.endsWith('/cgroup.procs') && existsSync(f))).toBe(true);
    expect(await driver.exists(id)).toBe(true);
    await driver.destroy(id);
    expect(await driver.exists(id)).toBe(false);
    await driver.destroy(id); // idempotent
  });

  it('reports an out-of-memory kill of a process above the memory limit', async () => {
    const { id, procsFiles } = await cgroup(parseResources({ memory: '32m', memorySwap: '32m' }));
    expect(await driver.oomKilled(id)).toBe(false);
    const p = await runIn(procsFiles, 'x=$(head -c 80000000 /dev/zero | tr "\\0" a); echo survived ${#x}');
    const { signal } = await p.exited;
    expect(p.output()).not.toContain('survived');
    expect(signal).toBe('SIGKILL');
    expect(await driver.oomKilled(id)).toBe(true);
  });

  it('does not report OOM for a process below the limit', async () => {
    const { id, procsFiles } = await cgroup(parseResources({ memory: '64m', memorySwap: '64m' }));
    const p = await runIn(procsFiles, 'x=$(head -c 2000000 /dev/zero | tr "\\0" a); echo survived ${#x}');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.output()).toContain('survived 2000000');
    expect(await driver.oomKilled(id)).toBe(false);
  });

  it('stops a fork bomb at the pids limit', async () => {
    const { id, procsFiles } = await cgroup(parseResources({ pids: 10 }));
    const p = await runIn(procsFiles, 'for i in $(seq 40); do sleep 30 & done; echo forked; sleep 30');
    const deadline = Date.now() + 5000;
    while (!/fork|resource temporarily unavailable/i.test(p.output()) && Date.now() < deadline) await sleep(20);
    expect(p.output()).toMatch(/fork|resource temporarily unavailable/i); // the shell could not fork the 11th
    expect(p.output()).not.toContain('forked');
    const pids = await driver.pids(id);
    expect(pids.length).toBeGreaterThan(5);
    expect(pids.length).toBeLessThanOrEqual(10);
    const stats = await driver.stats(id);
    expect(stats.pids.limit).toBe(10);
    expect(stats.pids.current).toBeLessThanOrEqual(10);
    await driver.destroy(id); // kills every process in it
    await sleep(100);
    for (const pid of pids) expect(['gone', 'Z']).toContain(procState(pid));
  });

  it('freezes a busy loop (no CPU time while frozen) and thaws it', async () => {
    const { id, procsFiles } = await cgroup(parseResources({}));
    await runIn(procsFiles, 'while :; do :; done');
    const started = Date.now();
    while ((await driver.stats(id)).cpu.totalNs < 20_000_000 && Date.now() - started < 3000) await sleep(20);
    expect((await driver.stats(id)).cpu.totalNs).toBeGreaterThanOrEqual(20_000_000);
    await driver.freeze(id);
    expect(await driver.frozen(id)).toBe(true);
    const a = (await driver.stats(id)).cpu.totalNs;
    await sleep(300);
    const b = (await driver.stats(id)).cpu.totalNs;
    expect(b - a).toBeLessThan(5_000_000); // < 5 ms in 300 ms: nothing ran
    await driver.thaw(id);
    expect(await driver.frozen(id)).toBe(false);
    // The loop runs again: it gets CPU time (polled: other test files may be busy on these cores).
    const deadline = Date.now() + 3000;
    let c = b;
    while (c - b < 20_000_000 && Date.now() < deadline) {
      await sleep(50);
      c = (await driver.stats(id)).cpu.totalNs;
    }
    expect(c - b).toBeGreaterThanOrEqual(20_000_000);
  });

  it('reads plausible stats', async () => {
    const { id, procsFiles } = await cgroup(parseResources({ memory: '64m', cpus: 1.5, cpuShares: 512 }));
    const p = await runIn(
      procsFiles,
      'x=$(head -c 4000000 /dev/zero | tr "\\0" a); i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ready; sleep 30',
    );
    const deadline = Date.now() + 10_000;
    while (!p.output().includes('ready') && Date.now() < deadline) await sleep(20);
    const s = await driver.stats(id);
    expect(s.memory.limit).toBe(64 * MiB);
    expect(s.memory.usage).toBeGreaterThan(100 * 1024);
    expect(s.memory.usage).toBeLessThan(64 * MiB);
    expect(s.memory.rss).toBeGreaterThan(0);
    expect(s.cpu.totalNs).toBeGreaterThan(0);
    expect(s.cpu.userNs + s.cpu.systemNs).toBeGreaterThan(0);
    expect(s.cpu.userNs + s.cpu.systemNs).toBeLessThanOrEqual(s.cpu.totalNs * 1.2 + 20_000_000);
    expect(s.cpu.throttledNs).toBeGreaterThanOrEqual(0);
    expect(s.pids.current).toBeGreaterThanOrEqual(1);
    expect(s.blkio.readBytes).toBeGreaterThanOrEqual(0);
    expect(s.blkio.writeBytes).toBeGreaterThanOrEqual(0);
    expect(s.network).toBeUndefined();
  });

  it('writes the limits the kernel then reports, and updates them live', async () => {
    const { id, paths } = await cgroup(
      parseResources({ memory: '32m', memoryReservation: '16m', cpus: 0.5, cpuShares: 512, pids: 50, cpusetCpus: '0' }),
    );
    const file = (name: string) => {
      const p = paths.map((d) => join(d, name)).find((f) => existsSync(f));
      return p === undefined ? undefined : readFileSync(p, 'utf8').trim();
    };
    if (driver.version === 1) {
      expect(file('memory.limit_in_bytes')).toBe(String(32 * MiB));
      expect(file('memory.soft_limit_in_bytes')).toBe(String(16 * MiB));
      expect(file('cpu.cfs_quota_us')).toBe('50000');
      expect(file('cpu.cfs_period_us')).toBe('100000');
      expect(file('cpu.shares')).toBe('512');
      expect(file('cpuset.cpus')).toBe('0');
      expect(file('cpuset.mems')).toBe(readFileSync(join(layout.v1.cpuset!, 'cpuset.mems'), 'utf8').trim());
    } else {
      expect(file('memory.max')).toBe(String(32 * MiB));
      expect(file('cpu.max')).toBe('50000 100000');
    }
    expect(file('pids.max')).toBe('50');
    await driver.update(id, parseResources({ memory: '96m', pids: 0 }));
    expect((await driver.stats(id)).memory.limit).toBe(96 * MiB);
    expect(file('pids.max')).toBe('max');
    await driver.update(id, parseResources({ memory: '24m', memorySwap: '24m' }));
    expect((await driver.stats(id)).memory.limit).toBe(24 * MiB);
  });

  it.skipIf(layout.mode === 'v2')(
    'denies host devices outside the default allow-list (v1 devices controller)',
    async () => {
      const { id, procsFiles } = await cgroup(parseResources({}));
      const list = readFileSync(
        join(
          driver.paths(id).find((p) => p.startsWith(layout.v1.devices!))!,
          'devices.list',
        ),
        'utf8',
      );
      expect(list).toContain('c 1:3 rwm');
      expect(list).not.toContain('a *:* rwm');
      const p = await runIn(procsFiles, '(: < /dev/null) && echo null-ok; (: < /dev/kmsg) && echo kmsg-ok; echo end');
      await p.exited;
      expect(p.output()).toContain('null-ok');
      expect(p.output()).not.toContain('kmsg-ok');
      expect(p.output()).toContain('end');
    },
  );
});
