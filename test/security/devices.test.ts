/**
 * Escape attempt: read a host block device through a node of one's own. A default container has
 * CAP_MKNOD (as under Docker), so it can make a node for any device number; what stops it from
 * opening a host disk through that node is the device cgroup: the v1 `devices` controller, or on
 * cgroup v2 the BPF device program berth attaches. The device here is a loop device attached to a
 * temp file for the test (a real host block device, whose bytes are this test's own).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Engine } from '../../src/index.js';
import { detectCgroups, V2Driver } from '../../src/runtime/cgroups/index.js';
import { attachTestLoopDevice, type TestLoopDevice } from '../helpers/loop-device.js';
import { INIT_PATHS, testEngine, withInitPath } from '../helpers/engine.js';
import { runProbe } from './probe.js';

let loop: TestLoopDevice;

beforeAll(() => {
  loop = attachTestLoopDevice();
});

afterAll(async () => {
  await loop.release();
});

describe.each(INIT_PATHS)('host block device through mknod (%s init)', (initPath) => {
  withInitPath(initPath);

  it('a default container can mknod a host block device, but opening it fails with EPERM', async () => {
    const { engine } = await testEngine();
    const r = await runProbe(engine, ['mknod-read', String(loop.major), String(loop.minor)]);
    expect(r.line).toBe('err EPERM open');
  });

  it('a privileged container reads it (the probe works)', async () => {
    const { engine } = await testEngine();
    const r = await runProbe(engine, ['mknod-read', String(loop.major), String(loop.minor)], { privileged: true });
    expect(r.line).toBe('ok read 512');
  });
});

/**
 * The same attempt through the whole container path with the cgroup v2 driver, on a machine whose
 * containers use v1 (as this one): the engine is given a {@link V2Driver} on the cgroup2 hierarchy
 * (`/sys/fs/cgroup/unified`, which has no controllers, so the container gets no limit but its
 * device program). The container is then in no v1 devices cgroup of its own, so the BPF program
 * is all that stands between it and the device. On a v2 machine the tests above take this path.
 */
const layout = detectCgroups();
const v2Here = layout.mode !== 'v2' && layout.v2Mount !== undefined;

describe.skipIf(!v2Here).each(INIT_PATHS)('host block device through mknod, cgroup v2 driver (%s init)', (initPath) => {
  withInitPath(initPath);

  /** An engine whose containers get their cgroup from a v2 driver; `created` lists each cgroup made. */
  async function v2Engine(): Promise<{ engine: Engine; created: string[] }> {
    const { engine } = await testEngine();
    const driver = new V2Driver({ layout });
    const created: string[] = [];
    const create = driver.create.bind(driver);
    driver.create = async (id, limits, options) => {
      const info = await create(id, limits, options);
      created.push(info.paths[0]!);
      return info;
    };
    // The engine reads its driver once, when it first makes its container service.
    Object.defineProperty(engine, 'cgroups', { value: driver });
    onTestFinished(() => driver.removeParent());
    return { engine, created };
  }

  it('a default container can mknod a host block device, but opening it fails with EPERM', async () => {
    const { engine, created } = await v2Engine();
    const r = await runProbe(engine, ['mknod-read', String(loop.major), String(loop.minor)]);
    expect(created).toEqual([expect.stringMatching(new RegExp(`^${layout.v2Mount}/berth/[0-9a-f]{64}$`))]);
    expect(r.line).toBe('err EPERM open');
  });

  it('a privileged container reads it (the probe works)', async () => {
    const { engine, created } = await v2Engine();
    const r = await runProbe(engine, ['mknod-read', String(loop.major), String(loop.minor)], { privileged: true });
    expect(created).toHaveLength(1);
    expect(r.line).toBe('ok read 512');
  });
});
