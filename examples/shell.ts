/**
 * An interactive shell in a container, on your terminal (`docker run -it`): raw mode, the
 * container's terminal resized with yours, Ctrl-C reaching the container's foreground job. Exit
 * the shell (`exit` or Ctrl-D) to end; the container is removed.
 *
 * Run as root on Linux, in a terminal: `npx tsx examples/shell.ts`.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, Engine, Image, buildBusyboxRootfs } from 'berth';

const root = await mkdtemp(join(tmpdir(), 'berth-shell-'));
try {
  const { tar } = await buildBusyboxRootfs(join(root, 'image'));
  await using engine = new Engine({ root: join(root, 'state'), runRoot: join(root, 'run') });
  await Image.import(tar, { ref: 'shell/busybox', engine });
  const size = () => ({ cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 });

  // The container's own program is the shell, on a terminal of our size.
  await using box = await Container.run('shell/busybox', ['sh'], {
    engine,
    tty: true,
    consoleSize: size(),
    network: 'none',
    hostname: 'berth',
  });
  const session = await box.attach();
  session.stdout.pipe(process.stdout);
  if (process.stdin.isTTY) process.stdin.setRawMode(true);
  process.stdin.pipe(session.stdin!);
  const onResize = () => void session.resize(size().cols, size().rows);
  process.stdout.on('resize', onResize);

  const { exitCode } = await box.wait();
  process.stdout.off('resize', onResize);
  process.stdin.unpipe(session.stdin!);
  if (process.stdin.isTTY) process.stdin.setRawMode(false);
  process.stdin.pause();
  await session.detach();
  console.log(`\r\nshell exited with ${exitCode}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
