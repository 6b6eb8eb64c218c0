/**
 * One behaviour, two implementations: the cgroup driver contract, run against the v1 driver on a
 * fake v1 tree and the v2 driver on a fake cgroup2 tree.
 */
import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createCgroupDriver,
  parseResources,
  V1Driver,
  V2Driver,
  type CgroupDriver,
} from '../../src/runtime/cgroups/index.js';
import { InvalidArgumentError, TimeoutError } from '../../src/errors.js';
import { fakeV1Tree, fakeV2Tree, type FakeTree } from './cgroups-fake.js';

const trees: FakeTree[] = [];
afterEach(() => {
  for (const t of trees.splice(0)) t.cleanup();
});

function setup(make: () => FakeTree): { tree: FakeTree; driver: CgroupDriver; killed: number[] } {
  const tree = make();
  trees.push(tree);
  const killed: number[] = [];
  const driver = createCgroupDriver({
    layout: tree.layout,
    fs: tree.fs,
    deviceFilter: tree.deviceFilter,
    timeoutMs: 500,
    pollMs: 2,
    kill: (pid) => void killed.push(pid),
  });
  return { tree, driver, killed };
}

/** Every error reachable from `e` through `cause` and `AggregateError.errors`. */
function causes(e: unknown): unknown[] {
  if (!(e instanceof Error)) return [];
  const next = [...(e.cause === undefined ? [] : [e.cause]), ...(e instanceof AggregateError ? e.errors : [])];
  return next.flatMap((n) => [n, ...causes(n)]);
}

const implementations: Array<[string, () => FakeTree, new (...a: never[]) => CgroupDriver]> = [
  ['v1 (fake tree)', () => fakeV1Tree(), V1Driver],
  ['v2 (fake tree)', () => fakeV2Tree(), V2Driver],
];

describe.each(implementations)('CgroupDriver contract: %s', (_name, make, cls) => {
  it('is the implementation for its layout', () => {
    const { driver } = setup(make);
    expect(driver).toBeInstanceOf(cls);
  });

  it('creates the cgroup under the berth parent and returns its cgroup.procs files', async () => {
    const { tree, driver } = setup(make);
    const info = await driver.create('c1', parseResources({ memory: '64m', pids: 10 }));
    expect(info.paths).toEqual(driver.paths('c1'));
    expect(info.paths.length).toBeGreaterThan(0);
    for (const p of info.paths) {
      expect(p.startsWith(tree.root)).toBe(true);
      expect(p.endsWith('/berth/c1')).toBe(true);
      expect(existsSync(p)).toBe(true);
    }
    expect(info.procsFiles).toEqual(info.paths.map((p) => `${p}/cgroup.procs`));
    expect(await driver.exists('c1')).toBe(true);
    expect(await driver.exists('c2')).toBe(false);
  });

  it('reuses an existing cgroup of the same id', async () => {
    const { driver } = setup(make);
    const a = await driver.create('c1', {});
    const b = await driver.create('c1', parseResources({ pids: 5 }));
    expect(b).toEqual(a);
    expect((await driver.stats('c1')).pids.limit).toBe(5);
  });

  it('applies and updates limits that stats then reports', async () => {
    const { driver } = setup(make);
    await driver.create('c1', parseResources({ memory: '64m', pids: 10 }));
    let s = await driver.stats('c1');
    expect(s.memory.limit).toBe(64 * 1024 * 1024);
    expect(s.pids.limit).toBe(10);
    await driver.update('c1', parseResources({ memory: '128m', pids: -1 }));
    s = await driver.stats('c1');
    expect(s.memory.limit).toBe(128 * 1024 * 1024);
    expect(s.pids.limit).toBeUndefined();
    expect(s.network).toBeUndefined();
  });

  it('freezes and thaws, waiting for the kernel', async () => {
    const { tree, driver } = setup(make);
    await driver.create('c1', {});
    tree.freezeDelayMs = 40;
    await driver.freeze('c1');
    // The fake kernel reports the cgroup frozen only 40 ms after the request: freeze() waited for it.
    expect(await driver.frozen('c1')).toBe(true);
    await driver.thaw('c1');
    expect(await driver.frozen('c1')).toBe(false);
  });

  it('gives up freezing with TIMEOUT and leaves the cgroup thawed', async () => {
    const { tree, driver } = setup(make);
    await driver.create('c1', {});
    tree.freezeDelayMs = Infinity;
    await expect(driver.freeze('c1')).rejects.toBeInstanceOf(TimeoutError);
    expect(await driver.frozen('c1')).toBe(false);
  });

  it('lists pids of the cgroup and its children, each once, in order', async () => {
    const { tree, driver } = setup(make);
    const { paths } = await driver.create('c1', {});
    const rel = (p: string) => p.slice(tree.root.length + 1);
    for (const p of paths) {
      await tree.fs.mkdir(`${p}/child`);
      await tree.fs.mkdir(`${p}/child/grandchild`);
      tree.set(`${rel(p)}/cgroup.procs`, '42\n7\n');
      tree.set(`${rel(p)}/child/cgroup.procs`, '9\n');
      tree.set(`${rel(p)}/child/grandchild/cgroup.procs`, '100\n42\n');
    }
    expect(await driver.pids('c1')).toEqual([7, 9, 42, 100]);
  });

  it('reports no OOM kill on a fresh cgroup', async () => {
    const { driver } = setup(make);
    await driver.create('c1', {});
    expect(await driver.oomKilled('c1')).toBe(false);
  });

  it("a create that fails after making the cgroup throws its own error with the failed removal's error as its cause", async () => {
    const { tree, driver } = setup(make);
    tree.hasKill = false;
    const write = tree.fs.write;
    // The pids limit cannot be written, and a process that never goes is in the cgroup by then.
    tree.fs.write = async (path, data) => {
      if (!path.endsWith('/pids.max')) return write(path, data);
      tree.set(
        `${driver
          .paths('c1')
          .at(-1)!
          .slice(tree.root.length + 1)}/cgroup.procs`,
        '100\n',
      );
      throw Object.assign(new Error('EIO'), { code: 'EIO' });
    };
    const err = await driver.create('c1', parseResources({ pids: 5 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'KERNEL', message: expect.stringContaining('pids.max') });
    expect(causes(err)).toContainEqual(expect.objectContaining({ errnoCode: 'EBUSY', syscall: 'rmdir' }));
  });

  it('destroys the cgroup, killing what runs in it, and is idempotent', async () => {
    const { tree, driver, killed } = setup(make);
    const { paths } = await driver.create('c1', {});
    for (const p of paths) tree.set(`${p.slice(tree.root.length + 1)}/cgroup.procs`, '');
    await driver.destroy('c1');
    for (const p of paths) expect(existsSync(p)).toBe(false);
    expect(await driver.exists('c1')).toBe(false);
    await driver.destroy('c1');
    await driver.destroy('never-made');
    expect(killed).toEqual([]);
  });

  it('keeps the shared parent until removeParent, which leaves one still in use', async () => {
    const { driver } = setup(make);
    const a = await driver.create('c1', {});
    const b = await driver.create('c2', {});
    const parents = [...new Set(a.paths.map((p) => dirname(p)))];
    await driver.destroy('c1');
    for (const p of parents) expect(existsSync(p)).toBe(true);
    await driver.removeParent();
    for (const p of b.paths) expect(existsSync(p)).toBe(true);
    await driver.destroy('c2');
    for (const p of parents) expect(existsSync(p)).toBe(true);
    await driver.removeParent();
    for (const p of parents) expect(existsSync(p)).toBe(false);
  });

  it('rejects ids that are not plain names', async () => {
    const { driver } = setup(make);
    for (const id of ['', '..', '../x', 'a/b', '.hidden']) {
      await expect(driver.create(id, {})).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(driver.destroy(id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'id' });
    }
  });
});
