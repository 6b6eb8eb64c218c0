/**
 * Volume copy-up of deep and wide trees, on both inits: every level is copied (owners, modes,
 * times, files and symlinks), with a constant number of open files and no recursion on the
 * init's stack, whatever the depth. The trees are made with paths relative to the working directory:
 * a 10,000-deep path is far beyond PATH_MAX.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  lchownSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, Image, Volume } from '../../src/index.js';
import { busyboxImage } from '../helpers/busybox.js';
import { BUSYBOX_REF, INIT_PATHS, NO_NETWORK, testEngine, withInitPath } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

type Engine = Awaited<ReturnType<typeof testEngine>>['engine'];

const MODES = [0o755, 0o700, 0o2750, 0o711, 0o1777];
const WHEN = new Date('2021-03-04T05:06:07Z');

/**
 * Makes a chain of `depth` directories named `d` under `base`, each with its own owner, group,
 * mode and times; every 500th level and the last hold a file `f` ("level N") and a symlink `l`.
 */
function makeChain(base: string, depth: number): void {
  const home = process.cwd();
  process.chdir(base);
  try {
    for (let i = 1; i <= depth; i++) {
      mkdirSync('d');
      process.chdir('d');
      if (i % 500 === 0 || i === depth) {
        writeFileSync('f', `level ${i}\n`);
        chownSync('f', 3000 + i, 4000 + i);
        chmodSync('f', 0o640);
        utimesSync('f', WHEN, WHEN);
        symlinkSync(`../${i}`, 'l');
        lchownSync('l', 5000 + i, 5000 + i);
        lutimesSync('l', WHEN, WHEN);
      }
    }
    // Upwards, so that no later change touches a directory's times.
    for (let i = depth; i >= 1; i--) {
      chownSync('.', 1000 + (i % 7), 2000 + (i % 5));
      chmodSync('.', MODES[i % MODES.length]!);
      utimesSync('.', WHEN, WHEN);
      process.chdir('..');
    }
  } finally {
    process.chdir(home);
  }
}

/**
 * Everything under `dir` but the sizes of directories (the file systems differ), one line per
 * entry in find's order (depth first): depth, type, owner, group, mode, mtime, symlink target;
 * then the content of every file `f`. GNU find and `-execdir` work at any depth.
 */
function listing(dir: string): { entries: string[]; files: string } {
  const out = (args: string[]) => execFileSync('find', ['.', ...args], { cwd: dir, maxBuffer: 256 << 20 }).toString();
  return {
    entries: out(['-mindepth', '1', '-printf', '%d %y %U %G %m %T@ %l\\n']).trimEnd().split('\n').sort(),
    files: out(['-name', 'f', '-execdir', 'cat', '{}', ';']),
  };
}

/** Removes a deep tree with GNU rm (which works at any depth): the engine's removal walks by full paths. */
function removeDeep(path: string): void {
  execFileSync('rm', ['-rf', path]);
}

/**
 * Lowers the open-file limit of the engine's zygote to 1024 (soft and hard), so that the inits it
 * starts from now on have it; returns once a container sees it (a template forked before keeps
 * the old limit, so the JavaScript path may take a few starts).
 */
async function limitOpenFiles(engine: Engine): Promise<void> {
  const seen = async () => {
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'grep "open files" /proc/self/limits'], {
      ...NO_NETWORK,
      engine,
    });
    await c.wait();
    const text = await c.logs();
    await c.remove();
    return /^Max open files\s+1024\s+1024\s/.test(text);
  };
  await seen();
  execFileSync('prlimit', ['--pid', String(engine.zygote.pid!), '--nofile=1024:1024']);
  for (let tries = 0; tries < 4; tries++) if (await seen()) return;
  throw new Error('the containers never saw the open-file limit of 1024');
}

/** An image: busybox with what `make` puts in /data, a VOLUME; returns that directory. */
async function dataImage(engine: Engine, ref: string, make: (data: string) => void): Promise<string> {
  const { dir } = await busyboxImage();
  const rootfs = tempDir('deep-img');
  cpSync(dir, rootfs, { recursive: true, verbatimSymlinks: true });
  const data = join(rootfs, 'data');
  mkdirSync(data);
  make(data);
  await Image.import(rootfs, { ref, engine, changes: ['VOLUME /data'] });
  return data;
}

for (const path of INIT_PATHS)
  describe(`copy-up of deep and wide trees (${path} init)`, () => {
    withInitPath(path);

    // The JavaScript init used to die here (libuv aborted on V8's first posted task, see closeOtherFds).
    it('copies a directory of 1000 entries (500 directories, 500 files)', async () => {
      const { engine } = await testEngine();
      const data = await dataImage(engine, 'test/wide:1', (d) => {
        for (let i = 0; i < 500; i++) {
          mkdirSync(join(d, `d${i}`), { mode: 0o750 });
          writeFileSync(join(d, `f${i}`), `${i}\n`);
          utimesSync(join(d, `d${i}`), WHEN, WHEN);
          utimesSync(join(d, `f${i}`), WHEN, WHEN);
        }
      });
      const want = listing(data);
      expect(want.entries).toHaveLength(1000);
      const c = await Container.run('test/wide:1', ['true'], { ...NO_NETWORK, engine, volumes: ['wide:/data'] });
      expect(await c.wait()).toEqual({ exitCode: 0 });
      expect(listing((await new Volume('wide', { engine }).inspect()).mountpoint).entries).toEqual(want.entries);
    });

    it('copies a 1000-deep tree from an image completely, into its anonymous VOLUME and into a new named volume (owners, modes, times, files, links)', async () => {
      const { engine } = await testEngine();
      const data = await dataImage(engine, 'test/deep:1', (d) => makeChain(d, 1000));
      const want = listing(data);
      expect(want.entries).toHaveLength(1000 + 2 * 2);
      const anon = await Container.run('test/deep:1', ['sh', '-c', 'cd /data && find . -name f | wc -l'], {
        ...NO_NETWORK,
        engine,
      });
      expect(await anon.wait()).toEqual({ exitCode: 0 });
      expect(await anon.logs()).toBe('2\n');
      const [volume] = await Volume.list({ engine });
      expect(listing(volume!.mountpoint)).toEqual(want);
      const named = await Container.run('test/deep:1', ['true'], { ...NO_NETWORK, engine, volumes: ['deep:/data'] });
      expect(await named.wait()).toEqual({ exitCode: 0 });
      expect(listing((await new Volume('deep', { engine }).inspect()).mountpoint)).toEqual(want);
      expect(want.files).toBe('level 500\nlevel 1000\n');
    });

    it("copies a 1000-deep tree with the init's open-file limit at 1024", async () => {
      const { engine } = await testEngine();
      const data = await dataImage(engine, 'test/deep:1', (d) => makeChain(d, 1000));
      await limitOpenFiles(engine);
      const c = await Container.run('test/deep:1', ['sh', '-c', 'grep "open files" /proc/self/limits'], {
        ...NO_NETWORK,
        engine,
        volumes: ['deep:/data'],
      });
      expect(await c.wait()).toEqual({ exitCode: 0 });
      expect(await c.logs()).toMatch(/^Max open files\s+1024\s+1024\s/);
      expect(listing((await new Volume('deep', { engine }).inspect()).mountpoint)).toEqual(listing(data));
    });

    it('copies a 10,000-deep tree completely, with the open-file limit at 1024', async () => {
      const { engine, root } = await testEngine();
      await limitOpenFiles(engine);
      // An image layer cannot carry it (berth unpacks and packs layers by full paths): the chain is
      // made in the container's writable layer before its first start, where copy-up reads it too.
      const c = await Container.create({
        image: BUSYBOX_REF,
        command: ['true'],
        ...NO_NETWORK,
        engine,
        volumes: ['deep:/data'],
      });
      const source = join(root, 'containers', await c.id(), 'upper', 'data');
      const mountpoint = (await new Volume('deep', { engine }).inspect()).mountpoint;
      mkdirSync(source, { recursive: true });
      try {
        makeChain(source, 10_000);
        const want = listing(source);
        expect(want.entries).toHaveLength(10_000 + 20 * 2);
        expect(want.files.split('\n')).toHaveLength(20 + 1);
        await c.start();
        expect(await c.wait()).toEqual({ exitCode: 0 });
        expect(listing(mountpoint)).toEqual(want);
      } finally {
        removeDeep(join(source, 'd'));
        removeDeep(join(mountpoint, 'd'));
      }
      expect(readdirSync(mountpoint)).toEqual([]);
    });
  });
