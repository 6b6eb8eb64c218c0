/**
 * The cgroup v2 driver against a temp directory laid out like a cgroup2 mount: the files it
 * writes (by value), controller delegation, freezing, stats and OOM parsing, and removal.
 */
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cgroupDeviceRules,
  DENY_ALL_DEVICES,
  parseResources,
  sharesToWeight,
  V2Driver,
  type DeviceRule,
} from '../../src/runtime/cgroups/index.js';
import { InvalidArgumentError, KernelError } from '../../src/errors.js';
import { fakeV2Tree, type FakeTree } from './cgroups-fake.js';
import { containerCgroupOptions, DEFAULT_DEVICE_RULES, withDefaultSwap } from '../../src/container/defaults.js';

const trees: FakeTree[] = [];
afterEach(() => {
  for (const t of trees.splice(0)) t.cleanup();
});

function setup(): { tree: FakeTree; driver: V2Driver; killed: number[] } {
  const tree = fakeV2Tree();
  trees.push(tree);
  const killed: number[] = [];
  const driver = new V2Driver({
    layout: tree.layout,
    fs: tree.fs,
    deviceFilter: tree.deviceFilter,
    timeoutMs: 300,
    pollMs: 2,
    kill: (pid) => void killed.push(pid),
  });
  return { tree, driver, killed };
}

describe('V2Driver', () => {
  it('enables the controllers it needs in every ancestor, then writes each limit', async () => {
    const { tree, driver } = setup();
    const { procsFiles } = await driver.create(
      'abc',
      parseResources({
        memory: '256m',
        memoryReservation: '128m',
        memorySwap: '512m',
        cpus: 1.5,
        cpuShares: 512,
        cpusetCpus: '0-1',
        cpusetMems: '0',
        pids: 100,
      }),
    );
    expect(procsFiles).toEqual([`${tree.root}/berth/abc/cgroup.procs`]);
    // A domain cgroup is joined through cgroup.procs only.
    expect(driver.threadJoinFiles('abc')).toEqual([]);
    expect(tree.read('cgroup.subtree_control')).toBe('cpu cpuset io memory pids');
    expect(tree.read('berth/cgroup.subtree_control')).toBe('cpu cpuset io memory pids');
    expect(tree.read('berth/abc/cgroup.controllers')).toBe('cpu cpuset io memory pids');
    const limits = tree.writes.filter(([p]) => p.startsWith('berth/abc/'));
    expect(limits).toEqual([
      ['berth/abc/memory.max', String(256 * 1024 ** 2)],
      ['berth/abc/memory.low', String(128 * 1024 ** 2)],
      ['berth/abc/memory.swap.max', String(256 * 1024 ** 2)], // swap alone: 512m - 256m
      ['berth/abc/cpu.max', '150000 100000'],
      ['berth/abc/cpu.weight', String(sharesToWeight(512))],
      ['berth/abc/cpuset.cpus', '0-1'],
      ['berth/abc/cpuset.mems', '0'],
      ['berth/abc/pids.max', '100'],
    ]);
    expect(tree.read('berth/abc/cpu.weight')).toBe('20');
  });

  it('writes each controller once: an enabled one is not enabled again', async () => {
    const { tree, driver } = setup();
    await driver.create('a', {});
    await driver.create('b', {});
    expect(tree.writes.filter(([p]) => p.endsWith('cgroup.subtree_control'))).toHaveLength(10);
  });

  it('uses the default swap (as much as memory) and unlimited values', async () => {
    const { tree, driver } = setup();
    await driver.create('c', withDefaultSwap(parseResources({ memory: '64m' })));
    expect(tree.read('berth/c/memory.swap.max')).toBe(String(64 * 1024 ** 2));
    await driver.update('c', parseResources({ memory: '64m', memorySwap: -1, pids: 0, cpuQuota: -1 }));
    expect(tree.read('berth/c/memory.swap.max')).toBe('max');
    expect(tree.read('berth/c/pids.max')).toBe('max');
    expect(tree.read('berth/c/cpu.max')).toBe('max 100000');
  });

  it('keeps the quota when only the period changes, and the period when only the quota does', async () => {
    const { tree, driver } = setup();
    await driver.create('c', parseResources({ cpuQuota: 50000 }));
    expect(tree.read('berth/c/cpu.max')).toBe('50000 100000');
    await driver.update('c', parseResources({ cpuPeriod: 200000 }));
    expect(tree.read('berth/c/cpu.max')).toBe('50000 200000');
    await driver.update('c', parseResources({ cpus: 0.25, cpuPeriod: 200000 }));
    expect(tree.read('berth/c/cpu.max')).toBe('50000 200000');
  });

  it('refuses a limit whose controller the kernel does not offer', async () => {
    const { tree } = setup();
    const driver = new V2Driver({
      layout: { ...tree.layout, v2Controllers: ['memory'] },
      fs: tree.fs,
      deviceFilter: tree.deviceFilter,
    });
    await expect(driver.create('c', parseResources({ pids: 5 }))).rejects.toMatchObject({
      code: 'KERNEL',
      message: expect.stringContaining("'pids'"),
    });
    expect(existsSync(`${tree.root}/berth/c`)).toBe(false);
  });

  it("gives the cgroup Docker's device rules (deny all, then the default list) before any limit is written", async () => {
    const { tree, driver } = setup();
    await driver.create('c', parseResources({ pids: 5 }), containerCgroupOptions(false));
    expect(tree.deviceFilters).toHaveLength(1);
    const [applied] = tree.deviceFilters;
    expect(applied!.dir).toBe('berth/c');
    expect(applied!.rules).toEqual([DENY_ALL_DEVICES, ...DEFAULT_DEVICE_RULES]);
    expect(applied!.rules).toEqual(cgroupDeviceRules(DEFAULT_DEVICE_RULES));
    const firstLimit = tree.writes.findIndex(([p]) => p === 'berth/c/pids.max');
    expect(applied!.afterWrites).toBeLessThanOrEqual(firstLimit);
  });

  it('adds the devices option after the default list, and applies no rule to a privileged cgroup', async () => {
    const { tree, driver } = setup();
    const fuse: DeviceRule = { type: 'c', major: 10, minor: 229, access: 'rwm', allow: true };
    await driver.create('a', {}, { devices: [...DEFAULT_DEVICE_RULES, fuse] });
    await driver.create('b', {}, containerCgroupOptions(true));
    expect(tree.deviceFilters.map((f) => [f.dir, f.rules])).toEqual([
      ['berth/a', [DENY_ALL_DEVICES, ...DEFAULT_DEVICE_RULES, fuse]],
      ['berth/b', null],
    ]);
  });

  it('refuses an invalid device rule, naming it, before making anything', async () => {
    const { tree, driver } = setup();
    const bad = { type: 'c', major: 10, minor: 229, access: 'rwx', allow: true } as DeviceRule;
    const err = await driver.create('c', {}, { devices: [bad] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ field: 'devices[0].access' });
    expect(existsSync(`${tree.root}/berth`)).toBe(false);
    expect(tree.deviceFilters).toEqual([]);
  });

  it('fails closed: when the kernel refuses the device filter, create fails and the cgroup is removed', async () => {
    const { tree, driver } = setup();
    tree.deviceFilterError = new KernelError('bpf', 1, 'EPERM', 'BPF_PROG_LOAD');
    await expect(driver.create('c', {})).rejects.toBe(tree.deviceFilterError);
    expect(existsSync(`${tree.root}/berth/c`)).toBe(false);
  });

  it('waits for cgroup.events to say frozen', async () => {
    const { tree, driver } = setup();
    await driver.create('c', {});
    tree.freezeDelayMs = 60;
    let done = false;
    const p = driver.freeze('c').then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(tree.read('berth/c/cgroup.freeze')).toBe('1');
    expect(done).toBe(false);
    await p;
    expect(tree.read('berth/c/cgroup.events')).toContain('frozen 1');
    await driver.thaw('c');
    expect(tree.read('berth/c/cgroup.freeze')).toBe('0');
  });

  it('reads stats from cpu.stat, memory.*, pids.* and io.stat', async () => {
    const { tree, driver } = setup();
    await driver.create('c', parseResources({ memory: '100m', pids: 20 }));
    tree.set(
      'berth/c/cpu.stat',
      'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 250\n',
    );
    tree.set('berth/c/memory.current', '5242880\n');
    tree.set('berth/c/memory.stat', 'anon 4194304\nfile 1048576\nkernel 12\n');
    tree.set('berth/c/pids.current', '3\n');
    tree.set(
      'berth/c/io.stat',
      '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n',
    );
    expect(await driver.stats('c')).toEqual({
      cpu: { totalNs: 1_500_000, userNs: 1_000_000, systemNs: 500_000, throttledNs: 250_000 },
      memory: { usage: 5242880, limit: 100 * 1024 ** 2, cache: 1048576, rss: 4194304 },
      pids: { current: 3, limit: 20 },
      blkio: { readBytes: 4097, writeBytes: 8194 },
    });
  });

  it('reports an OOM kill from memory.events', async () => {
    const { tree, driver } = setup();
    await driver.create('c', {});
    expect(await driver.oomKilled('c')).toBe(false);
    tree.set('berth/c/memory.events', 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    expect(await driver.oomKilled('c')).toBe(true);
  });

  it('destroys with cgroup.kill, children first', async () => {
    const { tree, driver, killed } = setup();
    await driver.create('c', {});
    await tree.fs.mkdir(`${tree.root}/berth/c/inner`);
    tree.set('berth/c/cgroup.procs', '100\n101\n');
    await driver.destroy('c');
    expect(tree.writes).toContainEqual(['berth/c/cgroup.kill', '1']);
    expect(killed).toEqual([]);
    expect(existsSync(`${tree.root}/berth/c`)).toBe(false);
    expect(existsSync(`${tree.root}/berth`)).toBe(true); // the shared parent stays…
    await driver.removeParent();
    expect(existsSync(`${tree.root}/berth`)).toBe(false); // …until removeParent
  });

  it('without cgroup.kill, freezes, signals every pid, thaws, and retries while busy', async () => {
    const { tree, driver, killed } = setup();
    tree.hasKill = false;
    tree.freezeDelayMs = 1;
    await driver.create('c', {});
    tree.set('berth/c/cgroup.procs', '100\n101\n');
    setTimeout(() => tree.set('berth/c/cgroup.procs', ''), 50); // the kernel empties it as they die
    await driver.destroy('c');
    expect(new Set(killed)).toEqual(new Set([100, 101]));
    expect(tree.writes.filter(([p]) => p === 'berth/c/cgroup.freeze').map(([, v]) => v)).toEqual(['1', '0']);
    expect(existsSync(`${tree.root}/berth/c`)).toBe(false);
  });

  it('fails destroy with EBUSY when a process never goes', async () => {
    const { tree, driver } = setup();
    tree.hasKill = false;
    await driver.create('c', {});
    tree.set('berth/c/cgroup.procs', '100\n');
    await expect(driver.destroy('c')).rejects.toMatchObject({ code: 'KERNEL', errnoCode: 'EBUSY', syscall: 'rmdir' });
  });
});
