/**
 * An engine on a temporary root with the busybox test image imported, for integration tests.
 * Everything it made is checked for leaks (mounts, processes under the root) and removed after
 * the test, also when the test fails.
 *
 * @module
 */
import { afterEach, beforeEach } from 'vitest';
import { Engine, Image } from '../../src/index.js';
import { networkService } from '../../src/network/network.js';
import { busyboxImage } from './busybox.js';
import { tempDir } from './tmp.js';
import { assertNoLeaks, containerCgroupMatch, snapshotLeaks, type LeakSnapshot } from './leaks.js';

/** The reference the busybox image is imported under. */
export const BUSYBOX_REF = 'test/busybox:latest';

const open: Array<{ engine: Engine; before: LeakSnapshot }> = [];

afterEach(async () => {
  const all = open.splice(0);
  let failure: unknown;
  for (const { engine, before } of all) {
    try {
      for (const c of await engine.containers.list({ all: true }))
        await engine.containers.remove(c.id, { force: true });
      // Networks (the default bridge included) keep their bridge and rules until removed.
      const nets = networkService(engine);
      for (const n of await nets.list()) await nets.remove(n.id);
      await assertNoLeaks(before);
    } catch (e) {
      failure ??= e;
    } finally {
      engine.close();
    }
  }
  if (failure) throw failure;
});

/** A fresh engine on a temp root, with {@link BUSYBOX_REF} imported. Cleaned up after the test. */
export async function testEngine(options: { image?: boolean } = {}): Promise<{ engine: Engine; root: string }> {
  const root = tempDir('engine');
  const engine = new Engine({ root, runRoot: `${root}/run` });
  open.push({ engine, before: snapshotLeaks(root, { cgroupMatch: containerCgroupMatch(root) }) });
  if (options.image !== false) {
    const { tar } = await busyboxImage();
    await Image.import(tar, { ref: BUSYBOX_REF, engine });
  }
  return { engine, root };
}

/** The two ways a container's init runs (see `native-init.ts`). */
export const INIT_PATHS = ['native', 'js'] as const;

/**
 * Runs the tests of the enclosing describe with the init of `path`: `berth-init` started with
 * posix_spawn (the default), or a forked JavaScript template (`BERTH_NATIVE_INIT=0`, as without a
 * C compiler). Containers need {@link NO_NETWORK} to take the native path: on the default bridge
 * the veth pair is wired by the JavaScript init whatever the switch says.
 */
export function withInitPath(path: (typeof INIT_PATHS)[number]): void {
  withSwitchOff('BERTH_NATIVE_INIT', path === 'js');
}

/**
 * Runs the tests of the enclosing describe with the exec of `path`: `berth-exec` (the default), or
 * a fork of the zygote running the JavaScript exec (`BERTH_NATIVE_EXEC=0`, as without a C compiler).
 */
export function withExecPath(path: 'native' | 'js'): void {
  withSwitchOff('BERTH_NATIVE_EXEC', path === 'js');
}

/** Sets the environment switch `name` to `0` (`off`) or unsets it for each test, and restores it after. */
function withSwitchOff(name: string, off: boolean): void {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env[name];
    if (off) process.env[name] = '0';
    else delete process.env[name];
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  });
}

/** Container options for loopback only (`network: 'none'`), which `berth-init` runs itself. */
export const NO_NETWORK = { network: 'none' } as const;
