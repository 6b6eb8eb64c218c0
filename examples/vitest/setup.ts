/**
 * Global setup of the vitest example: a throwaway engine root with a busybox image imported as
 * `example/busybox`, made from the machine's static busybox, so the example runs offline. The
 * workers find the root through `BERTH_ROOT`/`BERTH_RUN_ROOT` (`Engine.default()` reads them);
 * the teardown removes the root and what is left in it (the default network's bridge).
 *
 * A project of your own would rather point `BERTH_ROOT` at a lasting root, where the images stay
 * between runs.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, Image, Network, buildBusyboxRootfs } from 'berth';

export default async function setup(): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-vitest-example-'));
  process.env.BERTH_ROOT = join(dir, 'state');
  process.env.BERTH_RUN_ROOT = join(dir, 'run');
  {
    await using engine = new Engine();
    const { tar } = await buildBusyboxRootfs(join(dir, 'busybox'));
    await Image.import(tar, { ref: 'example/busybox:latest', engine });
  }
  return async () => {
    {
      await using engine = new Engine();
      await Network.prune({ engine });
    }
    await rm(dir, { recursive: true, force: true });
  };
}
