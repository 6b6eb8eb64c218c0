/**
 * The cgroup v1 driver against temp directories laid out like v1 controller mounts: the files it
 * writes (by value), device rules, cpuset inheritance, the memory/memsw ordering, freezing,
 * stats and OOM parsing, and removal.
 */
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { formatDeviceRule, parseResources, V1Driver, type DeviceRule } from '../../src/runtime/cgroups/index.js';
import { fakeV1Tree, type FakeTree } from './cgroups-fake.js';
import { DEFAULT_DEVICE_RULES, withDefaultSwap } from '../../src/container/defaults.js';

const MiB = 1024 ** 2;
const trees: FakeTree[] = [];
afterEach(() => {
  for (const t of trees.splice(0)) t.cleanup();
});

function setup(options: { coMountCpu?: boolean } = {}): { tree: FakeTree; driver: V1Driver; killed: number[] } {
  const tree = fakeV1Tree(options);
  trees.push(tree);
  const killed: number[] = [];
  const driver = new V1Driver({
    layout: tree.layout,
    fs: tree.fs,
    timeoutMs: 300,
    pollMs: 2,
    kill: (pid) => void killed.push(pid),
  });
  return { tree, driver, killed };
}

describe('V1Driver', () => {
  it('makes one directory per hierarchy and writes each limit to its controller', async () => {
    const { tree, driver } = setup();
    const { paths, procsFiles } = await driver.create(
      'abc',
      withDefaultSwap(
        parseResources({
          memory: '256m',
          memoryReservation: '128m',
          cpus: 0.5,
          cpuShares: 512,
          cpusetCpus: '1',
          pids: 64,
        }),
      ),
    );
    expect(paths.map((p) => p.slice(tree.root.length + 1)).sort()).toEqual(
      ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids'].map((c) => `${c}/berth/abc`),
    );
    expect(procsFiles).toHaveLength(8);
    // A single-threaded init joins through `tasks`: no global lock, no RCU grace period.
    expect(driver.threadJoinFiles('abc')).toEqual(paths.map((p) => `${p}/tasks`));
    const limits = tree.writes.filter(([p]) => !p.startsWith('devices/') && p.includes('/berth/abc/'));
    expect(limits).toEqual([
      ['cpuset/berth/abc/cpuset.cpus', '0-3'], // inherited before any task can join
      ['cpuset/berth/abc/cpuset.mems', '0'],
      ['memory/berth/abc/memory.limit_in_bytes', String(256 * MiB)],
      ['memory/berth/abc/memory.memsw.limit_in_bytes', String(512 * MiB)],
      ['memory/berth/abc/memory.soft_limit_in_bytes', String(128 * MiB)],
      ['cpu/berth/abc/cpu.cfs_period_us', '100000'],
      ['cpu/berth/abc/cpu.cfs_quota_us', '50000'],
      ['cpu/berth/abc/cpu.shares', '512'],
      ['cpuset/berth/abc/cpuset.cpus', '1'],
      ['pids/berth/abc/pids.max', '64'],
    ]);
    expect(tree.read('cpuset/berth/cpuset.cpus')).toBe('0-3');
    expect(tree.read('cpuset/berth/abc/cpuset.cpus')).toBe('1');
  });

  it("fills a parent cpuset another process made but has not filled yet, before its child's (no empty cpuset to join: ENOSPC)", async () => {
    const { tree, driver } = setup();
    // Another process's create: its mkdir of berth/ is done, its copy of cpus and mems not yet.
    await tree.fs.mkdir(`${tree.root}/cpuset/berth`);
    expect(tree.read('cpuset/berth/cpuset.cpus')).toBe('');
    await driver.create('abc', parseResources({}));
    expect(tree.read('cpuset/berth/cpuset.cpus')).toBe('0-3');
    expect(tree.read('cpuset/berth/cpuset.mems')).toBe('0');
    expect(tree.read('cpuset/berth/abc/cpuset.cpus')).toBe('0-3');
    expect(tree.read('cpuset/berth/abc/cpuset.mems')).toBe('0');
  });

  it('shares one directory between co-mounted controllers (cpu,cpuacct)', async () => {
    const { tree, driver } = setup({ coMountCpu: true });
    const { paths } = await driver.create('abc', parseResources({ cpus: 2 }));
    expect(paths).toHaveLength(7);
    expect(tree.read('cpu,cpuacct/berth/abc/cpu.cfs_quota_us')).toBe('200000');
  });

  it("denies every device, then allows Docker's default list", async () => {
    const { tree, driver } = setup();
    const fuse: DeviceRule = { type: 'c', major: 10, minor: 229, access: 'rwm', allow: true };
    await driver.create('abc', {}, { devices: [...DEFAULT_DEVICE_RULES, fuse] });
    const devices = tree.writes.filter(([p]) => p.startsWith('devices/berth/abc/'));
    expect(devices[0]).toEqual(['devices/berth/abc/devices.deny', 'a']);
    expect(devices.slice(1).map(([, v]) => v)).toEqual([...DEFAULT_DEVICE_RULES.map(formatDeviceRule), 'c 10:229 rwm']);
    expect(devices.slice(1).map(([v]) => v.split('/').pop())).toEqual(Array(13).fill('devices.allow'));
    for (const rule of [
      'c *:* m',
      'b *:* m',
      'c 1:3 rwm',
      'c 1:5 rwm',
      'c 1:7 rwm',
      'c 1:8 rwm',
      'c 1:9 rwm',
      'c 5:0 rwm',
      'c 5:1 rwm',
      'c 5:2 rwm',
      'c 136:* rwm',
      'c 10:200 rwm',
    ]) {
      expect(tree.read('devices/berth/abc/devices.list')).toContain(`${rule}\n`);
    }
    expect(tree.read('devices/berth/abc/devices.list')).not.toContain('a *:* rwm');
  });

  it('refuses an invalid device rule, naming it, before making anything', async () => {
    const { tree, driver } = setup();
    const bad = { type: 'b', major: 4096, minor: 0, access: 'r', allow: true } as const;
    await expect(driver.create('abc', {}, { devices: [bad] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'devices[0].major',
    });
    expect(existsSync(`${tree.root}/devices/berth`)).toBe(false);
  });

  it('leaves devices alone with allowAllDevices', async () => {
    const { tree, driver } = setup();
    await driver.create('abc', {}, { allowAllDevices: true });
    expect(tree.writes.filter(([p]) => p.startsWith('devices/'))).toEqual([]);
  });

  it('orders memory and memsw writes so the limit never exceeds memsw', async () => {
    const { tree, driver } = setup();
    await driver.create('abc', parseResources({ memory: '64m', memorySwap: '64m' }));
    expect(tree.read('memory/berth/abc/memory.memsw.limit_in_bytes')).toBe(String(64 * MiB));
    tree.writes.length = 0;
    await driver.update('abc', parseResources({ memory: '128m', memorySwap: '256m' }));
    expect(tree.writes.map(([p, v]) => `${p.split('/').pop()}=${v}`)).toEqual([
      `memory.limit_in_bytes=${128 * MiB}`, // refused: above memsw (64m)
      `memory.memsw.limit_in_bytes=${256 * MiB}`,
      `memory.limit_in_bytes=${128 * MiB}`,
    ]);
    tree.writes.length = 0;
    await driver.update('abc', parseResources({ memory: '32m', memorySwap: '32m' }));
    expect(tree.writes.map(([p, v]) => `${p.split('/').pop()}=${v}`)).toEqual([
      `memory.limit_in_bytes=${32 * MiB}`,
      `memory.memsw.limit_in_bytes=${32 * MiB}`,
    ]);
    expect(tree.read('memory/berth/abc/memory.limit_in_bytes')).toBe(String(32 * MiB));
  });

  it('waits through FREEZING until freezer.state reads FROZEN', async () => {
    const { tree, driver } = setup();
    await driver.create('abc', {});
    tree.freezeDelayMs = 50;
    let done = false;
    const p = driver.freeze('abc').then(() => (done = true));
    await new Promise((r) => setTimeout(r, 15));
    expect(tree.read('freezer/berth/abc/freezer.state')).toBe('FREEZING');
    expect(done).toBe(false);
    await p;
    expect(tree.read('freezer/berth/abc/freezer.state')).toBe('FROZEN');
    await driver.thaw('abc');
    expect(tree.read('freezer/berth/abc/freezer.state')).toBe('THAWED');
  });

  it('reads stats from cpuacct, cpu, memory, pids and blkio', async () => {
    const { tree, driver } = setup();
    await driver.create('abc', parseResources({ memory: '100m', pids: 9 }));
    tree.set('cpuacct/berth/abc/cpuacct.usage', '3000000\n');
    tree.set('cpuacct/berth/abc/cpuacct.usage_user', '2000000\n');
    tree.set('cpuacct/berth/abc/cpuacct.usage_sys', '1000000\n');
    tree.set('cpu/berth/abc/cpu.stat', 'nr_periods 4\nnr_throttled 2\nthrottled_time 777\n');
    tree.set('memory/berth/abc/memory.usage_in_bytes', '4096000\n');
    tree.set('memory/berth/abc/memory.stat', 'cache 10\nrss 20\ntotal_cache 100\ntotal_rss 200\n');
    tree.set('pids/berth/abc/pids.current', '4\n');
    tree.set(
      'blkio/berth/abc/blkio.throttle.io_service_bytes_recursive',
      '8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\n8:16 Read 4\n8:16 Write 1\nTotal 4613\n',
    );
    expect(await driver.stats('abc')).toEqual({
      cpu: { totalNs: 3_000_000, userNs: 2_000_000, systemNs: 1_000_000, throttledNs: 777 },
      memory: { usage: 4096000, limit: 100 * MiB, cache: 100, rss: 200 },
      pids: { current: 4, limit: 9 },
      blkio: { readBytes: 4100, writeBytes: 513 },
    });
  });

  it('falls back to cpuacct.stat ticks when usage_user/usage_sys are missing', async () => {
    const { tree, driver } = setup();
    await driver.create('abc', {});
    const { rmSync } = await import('node:fs');
    rmSync(`${tree.root}/cpuacct/berth/abc/cpuacct.usage_user`);
    tree.set('cpuacct/berth/abc/cpuacct.stat', 'user 3\nsystem 2\n');
    const s = await driver.stats('abc');
    expect(s.cpu.userNs).toBe(30_000_000);
    expect(s.cpu.systemNs).toBe(20_000_000);
  });

  it('reports an OOM kill from memory.oom_control', async () => {
    const { tree, driver } = setup();
    await driver.create('abc', {});
    expect(await driver.oomKilled('abc')).toBe(false);
    tree.set('memory/berth/abc/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    expect(await driver.oomKilled('abc')).toBe(true);
    tree.set('memory/berth/abc/memory.oom_control', 'oom_kill_disable 0\nunder_oom 1\n'); // older kernels
    expect(await driver.oomKilled('abc')).toBe(true);
  });

  it('destroys: freezes, kills every pid, thaws, removes every hierarchy directory', async () => {
    const { tree, driver, killed } = setup();
    tree.freezeDelayMs = 1;
    await driver.create('abc', {});
    tree.set('freezer/berth/abc/cgroup.procs', '300\n301\n');
    tree.set('memory/berth/abc/cgroup.procs', '300\n301\n');
    setTimeout(() => {
      tree.set('freezer/berth/abc/cgroup.procs', '');
      tree.set('memory/berth/abc/cgroup.procs', '');
    }, 40);
    await driver.destroy('abc');
    expect(killed.slice(0, 2)).toEqual([300, 301]);
    expect(tree.writes.filter(([p]) => p.endsWith('freezer.state')).map(([, v]) => v)).toEqual(['FROZEN', 'THAWED']);
    for (const p of driver.paths('abc')) expect(existsSync(p)).toBe(false);
  });
});
