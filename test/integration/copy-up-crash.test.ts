/**
 * Volume copy-up under kill -9 and under concurrent starts, on both inits (and with `userns`):
 * a copier killed at any point leaves the volume empty (the copy still to do) or complete, and
 * many starts at once on one new volume, from one engine or from several processes sharing the
 * root, all succeed and see the image's content exactly once.
 *
 * The copy is made by the container's init (`berth-init`, or the JavaScript init forked from
 * the zygote); the tests kill that process, or the engine process above it (which takes the
 * zygote and the init with it), while the volume is being filled.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Container, Image, Volume } from '../../src/index.js';
import { COPY_UP_COMPLETE, COPY_UP_STAGING } from '../../src/runtime/copy-up.js';
import { busyboxImage } from '../helpers/busybox.js';
import { BUSYBOX_REF, INIT_PATHS, NO_NETWORK, testEngine, withInitPath } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);
type Engine = Awaited<ReturnType<typeof testEngine>>['engine'];

const FIXTURE = 'test/fixtures/copy-up-starts.ts';
/** The big tree: DIRS directories of FILES files each, under /data. */
const DIRS = 40;
const FILES = 100;
/** The times of every entry the trees hold: whole seconds, which an image layer keeps exactly. */
const WHEN = new Date('2022-02-22T22:22:22Z');

/** Every entry under `dir` (path, type, owner, group, mode, size, mtime, link target) and a hash of every file's content. */
function listing(dir: string): string[] {
  const out: string[] = [];
  for (const p of (readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const full = join(dir, p);
    const st = lstatSync(full);
    let what = '';
    if (st.isSymbolicLink()) what = readlinkSync(full);
    else if (st.isFile()) what = createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 16);
    out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${what}`);
  }
  return out;
}

/** How many entries there are under `dir`, at any depth. */
function countUnder(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true }).length;
  } catch {
    return 0;
  }
}

/** A busybox root file system with `make` run on its /data; made once per file, returns both paths. */
function rootfsWith(name: string, make: (data: string) => void): () => Promise<{ rootfs: string; data: string }> {
  let made: { rootfs: string; data: string } | undefined;
  return async () => {
    if (made) return made;
    const { dir } = await busyboxImage();
    const rootfs = tempDir(name);
    cpSync(dir, rootfs, { recursive: true, verbatimSymlinks: true });
    const data = join(rootfs, 'data');
    mkdirSync(data);
    make(data);
    made = { rootfs, data };
    return made;
  };
}

const bigTree = rootfsWith('copyup-big', (data) => {
  for (let d = 0; d < DIRS; d++) {
    const dir = join(data, `d${d}`);
    mkdirSync(dir, { mode: 0o750 });
    for (let f = 0; f < FILES; f++) {
      writeFileSync(join(dir, `f${f}`), `${d}/${f}\n`.repeat(20));
      chownSync(join(dir, `f${f}`), f, d);
      utimesSync(join(dir, `f${f}`), WHEN, WHEN);
    }
    symlinkSync(`f${d}`, join(dir, 'link'));
    lutimesSync(join(dir, 'link'), WHEN, WHEN);
    chownSync(dir, 1000 + d, 1000);
    utimesSync(dir, WHEN, WHEN);
  }
});

const smallTree = rootfsWith('copyup-small', (data) => {
  for (let d = 0; d < 4; d++) {
    mkdirSync(join(data, `d${d}`));
    for (let f = 0; f < 50; f++) {
      writeFileSync(join(data, `d${d}`, `f${f}`), `${d}/${f}\n`);
      utimesSync(join(data, `d${d}`, `f${f}`), WHEN, WHEN);
    }
    utimesSync(join(data, `d${d}`), WHEN, WHEN);
  }
});

/** Imports a tree made by {@link rootfsWith} as `ref`; returns the image's /data on the host. */
async function imageOf(
  engine: Engine,
  ref: string,
  tree: () => Promise<{ rootfs: string; data: string }>,
): Promise<string> {
  const { rootfs, data } = await tree();
  await Image.import(rootfs, { ref, engine });
  return data;
}

/** Resolves once `poll` returns true, checking every 2 ms; throws after `ms`. */
async function until(what: string, poll: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!poll()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The pids of `pid`'s children. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    if (text) out.push(...text.split(' ').map(Number));
  }
  return out;
}

/** Whether process `pid` has a mount on `target` in its own view (a container's init, once it attached its volume). */
function hasMountOn(pid: number, target: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === target);
  } catch {
    return false;
  }
}

const gone = (pid: number) =>
  !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

/** Runs the race fixture in another process: `n` starts at once there. */
async function raceFromProcess(
  root: string,
  ref: string,
  volume: string,
  n: number,
  userns: boolean,
): Promise<Array<{ ok: boolean; count?: number; error?: string }>> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', FIXTURE, 'race', root, ref, volume, String(n), ...(userns ? ['userns'] : [])],
    { timeout: 120_000 },
  );
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

const imageCount = (data: string) => countUnder(data) + 1; // what `find /data | wc -l` prints

for (const path of INIT_PATHS)
  describe(`copy-up survives kill -9 (${path} init)`, () => {
    withInitPath(path);
    beforeAll(() => bigTree());

    it(
      'the copying init killed mid-copy: the start fails, the next start fills the volume completely (same entries, owners, modes, times, contents)',
      { timeout: 120_000 },
      async () => {
        const { engine } = await testEngine();
        const data = await imageOf(engine, 'test/big:1', bigTree);
        const want = listing(data);
        const mountpoint = (await (await new Volume('big', { engine }).create()).inspect()).mountpoint;
        const c = await Container.create({
          image: 'test/big:1',
          command: ['true'],
          ...NO_NETWORK,
          engine,
          volumes: ['big:/data'],
        });
        const warm = await Container.run('test/big:1', ['true'], { ...NO_NETWORK, engine });
        await warm.wait();
        const zygote = engine.zygote.pid!;
        const starting = c.start().then(
          () => 'started',
          (e: unknown) => e,
        );
        await until('the copy to begin', () => countUnder(mountpoint) >= 100);
        const copier = childrenOf(zygote).filter((p) => hasMountOn(p, '/data'));
        expect(copier).toHaveLength(1);
        process.kill(copier[0]!, 'SIGKILL');
        expect(await starting).toBeInstanceOf(Error);
        await until('the init to be gone', () => gone(copier[0]!));
        // The kill landed mid-copy: part of the tree is on disk.
        const partial = countUnder(mountpoint);
        expect(partial).toBeGreaterThan(0);
        expect(partial).toBeLessThan(want.length);

        const again = await Container.run('test/big:1', ['sh', '-c', 'find /data | wc -l'], {
          ...NO_NETWORK,
          engine,
          volumes: ['big:/data'],
        });
        expect(await again.wait()).toEqual({ exitCode: 0 });
        expect(Number((await again.logs()).trim())).toBe(want.length + 1);
        expect(listing(mountpoint)).toEqual(want);
      },
    );

    it(
      'the engine process killed mid-copy: a start from another engine fills the volume completely',
      { timeout: 120_000 },
      async () => {
        const { engine, root } = await testEngine();
        const data = await imageOf(engine, 'test/big:1', bigTree);
        const want = listing(data);
        const mountpoint = (await (await new Volume('big', { engine }).create()).inspect()).mountpoint;
        const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'copy', root, 'test/big:1', 'big'], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise((r) => child.on('exit', r));
        try {
          let out = '';
          child.stdout.on('data', (b: Buffer) => (out += b));
          await until("the child engine's zygote", () => out.includes('\n'));
          const zygote = (JSON.parse(out.split('\n')[0]!) as { zygote: number }).zygote;
          await until('the copy to begin', () => countUnder(mountpoint) >= 100);
          const inits = childrenOf(zygote);
          child.kill('SIGKILL');
          await exited;
          expect(out).not.toContain('started');
          for (const p of [zygote, ...inits]) await until(`process ${p} to be gone`, () => gone(p));
          const partial = countUnder(mountpoint);
          expect(partial).toBeGreaterThan(0);
          expect(partial).toBeLessThan(want.length);
        } finally {
          child.kill('SIGKILL');
          await exited;
        }
        const again = await Container.run('test/big:1', ['sh', '-c', 'find /data | wc -l'], {
          ...NO_NETWORK,
          engine,
          volumes: ['big:/data'],
        });
        expect(await again.wait()).toEqual({ exitCode: 0 });
        expect(Number((await again.logs()).trim())).toBe(want.length + 1);
        expect(listing(mountpoint)).toEqual(want);
      },
    );
  });

describe('copy-up survives kill -9 with userns (native init)', () => {
  withInitPath('native');
  beforeAll(() => bigTree());

  it(
    "the copying init of a userns container killed mid-copy: the next start fills the volume completely, with the image's owners on disk",
    { timeout: 120_000 },
    async () => {
      const { engine } = await testEngine();
      const data = await imageOf(engine, 'test/big:1', bigTree);
      const want = listing(data);
      const mountpoint = (await (await new Volume('big', { engine }).create()).inspect()).mountpoint;
      const opts = { ...NO_NETWORK, engine, userns: 'auto' } as const;
      const warm = await Container.run('test/big:1', ['true'], opts);
      await warm.wait();
      const zygote = engine.zygote.pid!;
      const c = await Container.create({ image: 'test/big:1', command: ['true'], ...opts, volumes: ['big:/data'] });
      const starting = c.start().then(
        () => 'started',
        (e: unknown) => e,
      );
      await until('the copy to begin', () => countUnder(mountpoint) >= 100);
      const copier = childrenOf(zygote).filter((p) => hasMountOn(p, '/data'));
      expect(copier).toHaveLength(1);
      process.kill(copier[0]!, 'SIGKILL');
      expect(await starting).toBeInstanceOf(Error);
      await until('the init to be gone', () => gone(copier[0]!));
      expect(countUnder(mountpoint)).toBeLessThan(want.length);
      const again = await Container.run('test/big:1', ['sh', '-c', 'find /data | wc -l'], {
        ...opts,
        volumes: ['big:/data'],
      });
      expect(await again.wait()).toEqual({ exitCode: 0 });
      expect(Number((await again.logs()).trim())).toBe(want.length + 1);
      expect(listing(mountpoint)).toEqual(want);
    },
  );
});

for (const path of INIT_PATHS)
  describe(`concurrent starts on one new volume (${path} init)`, () => {
    withInitPath(path);
    beforeAll(() => smallTree());

    it(
      '24 containers of one engine started at once on one new named volume all start, each sees the whole content, the volume holds it once',
      { timeout: 60_000 },
      async () => {
        const { engine } = await testEngine();
        const data = await imageOf(engine, 'test/small:1', smallTree);
        const cs = await Promise.all(
          Array.from({ length: 24 }, () =>
            Container.create({
              image: 'test/small:1',
              command: ['sh', '-c', 'find /data | wc -l'],
              ...NO_NETWORK,
              engine,
              volumes: ['shared:/data'],
            }),
          ),
        );
        const starts = await Promise.allSettled(cs.map((c) => c.start()));
        expect(starts.filter((s) => s.status === 'rejected')).toEqual([]);
        for (const c of cs) {
          expect(await c.wait()).toEqual({ exitCode: 0 });
          expect(Number((await c.logs()).trim())).toBe(imageCount(data));
        }
        expect(listing((await new Volume('shared', { engine }).inspect()).mountpoint)).toEqual(listing(data));
      },
    );

    it(
      '24 starts at once from 3 processes sharing the root on one new named volume all succeed, each sees the whole content, the volume holds it once',
      { timeout: 60_000 },
      async () => {
        const { engine, root } = await testEngine();
        const data = await imageOf(engine, 'test/small:1', smallTree);
        const results = (
          await Promise.all([0, 1, 2].map(() => raceFromProcess(root, 'test/small:1', 'shared', 8, false)))
        ).flat();
        expect(results).toEqual(Array.from({ length: 24 }, () => ({ ok: true, count: imageCount(data) })));
        expect(listing((await new Volume('shared', { engine }).inspect()).mountpoint)).toEqual(listing(data));
      },
    );
  });

describe('concurrent starts on one new volume with userns (native init)', () => {
  withInitPath('native');
  beforeAll(() => smallTree());

  it(
    "24 userns containers started at once from 3 processes on one new named volume all succeed; the volume holds the image's content once, with the image's owners on disk",
    { timeout: 60_000 },
    async () => {
      const { engine, root } = await testEngine();
      const data = await imageOf(engine, 'test/small:1', smallTree);
      const results = (
        await Promise.all([0, 1, 2].map(() => raceFromProcess(root, 'test/small:1', 'shared', 8, true)))
      ).flat();
      expect(results).toEqual(Array.from({ length: 24 }, () => ({ ok: true, count: imageCount(data) })));
      expect(listing((await new Volume('shared', { engine }).inspect()).mountpoint)).toEqual(listing(data));
    },
  );
});

for (const path of INIT_PATHS)
  describe(`copy-up finishes what a killed copier left (${path} init)`, () => {
    withInitPath(path);
    beforeAll(() => smallTree());

    it("a complete copy left half moved in is moved in whole by the next start; nothing of berth's stays on the volume", async () => {
      const { engine } = await testEngine();
      const data = await imageOf(engine, 'test/small:1', smallTree);
      const mountpoint = (await (await new Volume('half', { engine }).create()).inspect()).mountpoint;
      cpSync(data, join(mountpoint, COPY_UP_COMPLETE), { recursive: true, preserveTimestamps: true });
      for (const d of readdirSync(data)) utimesSync(join(mountpoint, COPY_UP_COMPLETE, d), WHEN, WHEN); // cpSync sets the files' only
      for (const d of ['d0', 'd1']) renameSync(join(mountpoint, COPY_UP_COMPLETE, d), join(mountpoint, d));
      const c = await Container.run('test/small:1', ['sh', '-c', 'find /data | wc -l'], {
        ...NO_NETWORK,
        engine,
        volumes: ['half:/data'],
      });
      expect(await c.wait()).toEqual({ exitCode: 0 });
      expect(Number((await c.logs()).trim())).toBe(imageCount(data));
      expect(listing(mountpoint)).toEqual(listing(data));
    });

    it("a killed copier's staging (a 300-deep tree and files) is removed and the copy made by the next start", async () => {
      const { engine } = await testEngine();
      const data = await imageOf(engine, 'test/small:1', smallTree);
      const mountpoint = (await (await new Volume('stale', { engine }).create()).inspect()).mountpoint;
      let dir = join(mountpoint, COPY_UP_STAGING);
      mkdirSync(dir);
      for (let i = 0; i < 300; i++) {
        writeFileSync(join(dir, 'junk'), `${i}\n`);
        symlinkSync('/', join(dir, 'root'));
        mkdirSync(join(dir, 'empty'));
        dir = join(dir, 'd');
        mkdirSync(dir);
      }
      const c = await Container.run('test/small:1', ['sh', '-c', 'find /data | wc -l'], {
        ...NO_NETWORK,
        engine,
        volumes: ['stale:/data'],
      });
      expect(await c.wait()).toEqual({ exitCode: 0 });
      expect(Number((await c.logs()).trim())).toBe(imageCount(data));
      expect(listing(mountpoint)).toEqual(listing(data));
    });

    it("a volume holding anything but berth's leftovers gets no copy, and its leftovers are left alone (nocopy too)", async () => {
      const { engine } = await testEngine();
      await imageOf(engine, 'test/small:1', smallTree);
      const mountpoint = (await (await new Volume('mine', { engine }).create()).inspect()).mountpoint;
      writeFileSync(join(mountpoint, 'mine'), 'x');
      const c = await Container.run('test/small:1', ['sh', '-c', 'ls -A /data'], {
        ...NO_NETWORK,
        engine,
        volumes: ['mine:/data'],
      });
      expect(await c.wait()).toEqual({ exitCode: 0 });
      expect(await c.logs()).toBe('mine\n');
      const other = (await (await new Volume('nocopy', { engine }).create()).inspect()).mountpoint;
      mkdirSync(join(other, COPY_UP_STAGING));
      const n = await Container.run('test/small:1', ['sh', '-c', 'ls -A /data'], {
        ...NO_NETWORK,
        engine,
        mounts: [{ type: 'volume', source: 'nocopy', target: '/data', nocopy: true }],
      });
      expect(await n.wait()).toEqual({ exitCode: 0 });
      expect(await n.logs()).toBe(`${COPY_UP_STAGING}\n`);
    });
  });

for (const path of INIT_PATHS)
  describe(`copy-up into a read-only volume (${path} init)`, () => {
    withInitPath(path);

    it('a new named volume mounted read-only over image content is filled, then read-only in the container', async () => {
      const { engine } = await testEngine();
      const c = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'head -1 /etc/passwd | cut -d: -f1; touch /etc/x 2>&1 | grep -o Read-only'],
        { ...NO_NETWORK, engine, volumes: ['rov:/etc:ro'] },
      );
      expect(await c.wait()).toEqual({ exitCode: 0 });
      expect(await c.logs()).toBe('root\nRead-only\n');
    });
  });
