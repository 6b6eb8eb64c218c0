/**
 * A root that a container filled (a small tmpfs holding both the root and the run root): every
 * read still works and tells the truth, every removal works and gives the space back, and a
 * write that needs space fails with `NO_SPACE` naming the path.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BerthError, Container, Engine, Image } from '../../src/index.js';
import { busyboxImage } from '../helpers/busybox.js';
import { BUSYBOX_REF, NO_NETWORK } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

/** Free bytes of the file system holding `dir`. */
function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Mounts a tmpfs of `size` at a fresh temp dir, runs `fn` on an engine over it, and cleans everything up. */
async function onTinyRoot(size: string, fn: (engine: Engine, root: string) => Promise<void>): Promise<void> {
  const root = tempDir('full-disk');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'berth-full-disk', root], { stdio: 'pipe' });
  const engine = new Engine({ root, runRoot: path.join(root, 'run') });
  const errors: unknown[] = [];
  try {
    await fn(engine, root);
  } catch (e) {
    errors.push(e);
  }
  try {
    for (const c of await engine.containers.list({ all: true })) await engine.containers.remove(c.id, { force: true });
  } catch (e) {
    errors.push(e);
  }
  engine.close();
  try {
    execFileSync('umount', [root], { stdio: 'pipe' });
  } catch (e) {
    errors.push(e);
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, 'the test and its cleanup failed');
}

const REPO = path.resolve(import.meta.dirname, '../..');

/** What another process sharing `root` sees: each container's id, status and exit code. */
async function statesSeenElsewhere(
  root: string,
): Promise<Array<{ id: string; status: string; exitCode: number | null }>> {
  const script = path.join(tempDir('full-disk-reader'), 'read.mts');
  fs.writeFileSync(
    script,
    `import { Container, Engine } from '${path.join(REPO, 'src/index.ts')}';
const root = process.argv[2];
const engine = new Engine({ root, runRoot: root + '/run' });
const out = [];
for (const c of await Container.list({ all: true, engine })) {
  const info = await new Container(c.id, { engine }).inspect();
  out.push({ id: c.id, status: info.state.status, exitCode: info.state.exitCode ?? null });
}
engine.close();
console.log(JSON.stringify(out));`,
  );
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, root], { cwd: REPO });
  return JSON.parse(stdout) as Array<{ id: string; status: string; exitCode: number | null }>;
}

/**
 * Fills the disk once its first line is in its log and /go exists, then writes 64 KiB more output
 * (which its log has no room for) and exits with 3.
 */
const FILL = [
  'sh',
  '-c',
  'echo filling; until [ -e /go ]; do sleep 0.05; done; dd if=/dev/zero of=/fill bs=64k 2>/dev/null; yes after | head -c 65536; exit 3',
];

/** Runs the {@link FILL} container (detached: its exit and log written by berth-monitor) and waits for its exit. */
async function fillDisk(engine: Engine, detach = false): Promise<Container> {
  const filler = await Container.run(BUSYBOX_REF, FILL, { ...NO_NETWORK, detach, engine });
  await expect.poll(() => filler.logs(), { timeout: 20_000 }).toBe('filling\n');
  await filler.exec(['touch', '/go']);
  expect(await filler.wait()).toEqual({ exitCode: 3 });
  return filler;
}

describe.skipIf(process.getuid?.() !== 0)('a full disk', () => {
  it.each([
    ['attached', false],
    ['detached', true],
  ])(
    'wait, list, inspect, logs, remove({ force: true }) and Image.remove all work on a root a container (%s) filled; space comes back and a new container runs',
    async (_, detach) => {
      await onTinyRoot('64m', async (engine, root) => {
        const { tar } = await busyboxImage();
        await Image.import(tar, { ref: BUSYBOX_REF, engine });
        const extra = await Image.import(tar, { ref: 'extra:latest', changes: ['ENV EXTRA=1'], engine });
        const extraId = (await extra.inspect()).id;
        const sleeper = await Container.run(BUSYBOX_REF, ['sleep', '1000'], { ...NO_NETWORK, engine });
        const filler = await fillDisk(engine, detach);
        expect(() => fs.writeFileSync(path.join(root, 'probe'), Buffer.alloc(64 * 1024))).toThrow(/ENOSPC/);
        // Another process learns the exit from the kernel and the exit file, without writing.
        expect(await statesSeenElsewhere(root)).toEqual(
          expect.arrayContaining([
            { id: await filler.id(), status: 'exited', exitCode: 3 },
            { id: await sleeper.id(), status: 'running', exitCode: null },
          ]),
        );

        const all = await Container.list({ all: true, engine });
        expect(all.map((c) => [c.id, c.state])).toEqual(
          expect.arrayContaining([
            [await filler.id(), 'exited'],
            [await sleeper.id(), 'running'],
          ]),
        );
        const info = await filler.inspect();
        expect(info.state).toMatchObject({ status: 'exited', running: false, exitCode: 3 });
        expect(await filler.logs()).toMatch(/^filling\n/);

        expect(await extra.remove()).toEqual([{ untagged: 'extra:latest' }, { deleted: extraId }]);
        expect(await extra.exists()).toBe(false);
        await sleeper.remove({ force: true });
        await expect(sleeper.inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
        await filler.remove({ force: true });
        await expect(filler.inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });

        expect(freeBytes(root)).toBeGreaterThan(48 * 1024 * 1024);
        const again = await Container.run(BUSYBOX_REF, ['echo', 'again'], { ...NO_NETWORK, engine });
        expect(await again.wait()).toEqual({ exitCode: 0 });
        expect(await again.logs()).toBe('again\n');
        await again.remove();
        const events = (await engine.eventLog.read({ type: 'container' }))
          .filter((e) => e.id === info.id)
          .map((e) => e.action);
        expect(events).toEqual(expect.arrayContaining(['die', 'destroy']));
      });
    },
    60_000,
  );

  it('stop() and kill() of running containers work on a root a container filled (stopping what fills a disk must not need space)', async () => {
    await onTinyRoot('64m', async (engine, root) => {
      const { tar } = await busyboxImage();
      await Image.import(tar, { ref: BUSYBOX_REF, engine });
      const stopped = await Container.run(BUSYBOX_REF, ['sleep', '1000'], { ...NO_NETWORK, engine });
      const killed = await Container.run(BUSYBOX_REF, ['sleep', '1000'], { ...NO_NETWORK, engine });
      await fillDisk(engine);
      expect(() => fs.writeFileSync(path.join(root, 'probe'), Buffer.alloc(64 * 1024))).toThrow(/ENOSPC/);
      await stopped.stop({ timeout: 1 });
      expect((await stopped.inspect()).state).toMatchObject({ status: 'exited', running: false });
      await killed.kill();
      expect((await killed.wait()).exitCode).toBe(137);
      expect((await killed.inspect()).state).toMatchObject({ status: 'exited', running: false });
    });
  }, 60_000);

  it('a write that needs space fails with NO_SPACE naming the path and what to do', async () => {
    await onTinyRoot('64m', async (engine, root) => {
      const { tar } = await busyboxImage();
      await Image.import(tar, { ref: BUSYBOX_REF, engine });
      await fillDisk(engine);

      const e1 = await Container.create({ image: BUSYBOX_REF, command: ['true'], name: 'named', engine }).catch(
        (e: unknown) => e,
      );
      expect(e1).toBeInstanceOf(BerthError);
      expect(e1).toMatchObject({ code: 'NO_SPACE' });
      expect((e1 as Error).message).toContain(`free space on the file system that holds ${root}`);

      const e2 = await Container.create({ image: BUSYBOX_REF, command: ['true'], engine }).catch((e: unknown) => e);
      expect(e2).toMatchObject({ code: 'NO_SPACE' });
      expect((e2 as Error).message).toContain(`free space on the file system that holds ${root}`);

      const e3 = await Image.import(tar, { ref: 'more:latest', changes: ['ENV MORE=1'], engine }).catch(
        (e: unknown) => e,
      );
      expect(e3).toMatchObject({ code: 'NO_SPACE' });
      expect((e3 as Error).message).toContain(`free space on the file system that holds ${root}`);
      expect(await Container.list({ all: true, engine })).toHaveLength(1);
    });
  }, 60_000);
});
