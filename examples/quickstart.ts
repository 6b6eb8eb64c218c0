/**
 * berth in one page, offline: make an image from a local busybox, run a container from it, read
 * its output, clean up.
 *
 * Run as root on Linux: `npm run quickstart` (or `bash scripts/quickstart.sh` on a fresh machine,
 * which installs busybox-static first).
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, Network, buildBusyboxRootfs } from 'berth';

async function quickstart(root: string): Promise<number> {
  // 1. A rootfs tarball made here from /bin/busybox: no registry, no network.
  const { tar } = await buildBusyboxRootfs(join(root, 'image'));

  // 2. An engine with its own state, so this example touches nothing else on the machine.
  await using engine = new Engine({ root: join(root, 'state'), runRoot: join(root, 'run') });

  // 3. `docker import`: the tarball becomes a one-layer image.
  const image = await Image.import(tar, { ref: 'quickstart/busybox:latest', engine });
  console.log(`imported ${(await image.inspect()).id}`);

  // 4. `docker run`: create and start a container, then wait for it to exit.
  const container = await Container.run(
    'quickstart/busybox:latest',
    [
      'sh',
      '-c',
      'echo "hello from $(hostname), PID $$, as $(id -un)"; ls /proc | grep -c "^[0-9]" | xargs echo processes visible:',
    ],
    { engine },
  );
  const { exitCode } = await container.wait();

  // 5. `docker logs`, then `docker rm`.
  process.stdout.write(await container.logs());
  console.log(`exit code: ${exitCode}`);
  await container.remove();

  // 6. The default network's bridge and NAT rules live until the network is removed (as docker0):
  //    this example leaves nothing behind on the machine.
  await Network.prune({ engine });
  return exitCode;
}

const root = await mkdtemp(join(tmpdir(), 'berth-quickstart-'));
try {
  process.exitCode = await quickstart(root);
} finally {
  await rm(root, { recursive: true, force: true });
}
