/**
 * Snapshots on the real kernel: a container's file system frozen as a layer, forked into new
 * containers over fresh upper dirs; whiteouts honoured, the source running on, the image's layers
 * kept, nothing left on disk after removal.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BerthError, Container, Image, Snapshot } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';
import { readTar } from '../helpers/tar.js';

const T = 120_000;

/** What `cat` prints in container `c`, or `<missing>`. */
async function read(c: Container, path: string): Promise<string> {
  const r = await c.exec(['sh', '-c', `cat ${path} 2>/dev/null || echo '<missing>'`]);
  return r.stdout.trim();
}

describe('snapshots', () => {
  it(
    "a fork sees the source's files; its writes are seen by neither the source, the snapshot nor another fork",
    async () => {
      const { engine } = await testEngine();
      await using src = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'echo seeded > /data; mkdir -p /d/e; echo deep > /d/e/f; exec sleep 600'],
        { engine, ...NO_NETWORK },
      );
      await expect.poll(() => read(src, '/d/e/f'), { timeout: 20_000 }).toBe('deep');
      const snap = await src.snapshot({ labels: { purpose: 'test' } });
      expect(snap).toBeInstanceOf(Snapshot);
      expect((await snap.inspect()).container).toBe(await src.id());
      expect((await snap.inspect()).labels).toEqual({ purpose: 'test' });

      await using a = await snap.fork({ ...NO_NETWORK });
      await using b = await Container.run(snap, ['sleep', '600'], { engine, ...NO_NETWORK });
      expect(await read(a, '/data')).toBe('seeded');
      expect(await read(b, '/d/e/f')).toBe('deep');

      await a.exec(['sh', '-c', 'echo from-a > /data; echo new > /only-a']);
      expect(await read(a, '/data')).toBe('from-a');
      expect(await read(b, '/data')).toBe('seeded');
      expect(await read(b, '/only-a')).toBe('<missing>');
      expect(await read(src, '/data')).toBe('seeded');
      expect(await read(src, '/only-a')).toBe('<missing>');
      await using c = await snap.fork({ command: ['sleep', '600'], ...NO_NETWORK });
      expect(await read(c, '/data')).toBe('seeded');
      expect(await read(c, '/only-a')).toBe('<missing>');
      // The fork's defaults are the source's: its command.
      expect((await a.inspect()).config.cmd).toEqual([
        'sh',
        '-c',
        'echo seeded > /data; mkdir -p /d/e; echo deep > /d/e/f; exec sleep 600',
      ]);
      await snap.remove({ force: true });
    },
    T,
  );

  it(
    'two forks started at once each see the snapshot and only their own writes',
    async () => {
      const { engine } = await testEngine();
      const src = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo base > /f'], { engine, ...NO_NETWORK });
      await src.wait();
      const snap = await src.snapshot();
      const forks = await Promise.all(
        ['one', 'two'].map((n) =>
          snap.fork({ command: ['sh', '-c', `cat /f; echo ${n} > /f; cat /f`], name: `fork-${n}`, ...NO_NETWORK }),
        ),
      );
      for (const f of forks) await f.wait();
      expect(await forks[0]!.logs()).toBe('base\none\n');
      expect(await forks[1]!.logs()).toBe('base\ntwo\n');
      await snap.remove({ force: true });
      expect(await engine.containers.list({ all: true })).toHaveLength(1);
    },
    T,
  );

  it(
    'a running source that keeps writing is snapshotted (paused for the copy) and keeps running',
    async () => {
      const { engine } = await testEngine();
      await using src = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /counter; echo $i >> /log; sleep 0.01; done'],
        { engine, ...NO_NETWORK },
      );
      await expect.poll(() => read(src, '/counter').then(Number), { timeout: 20_000 }).toBeGreaterThan(5);
      const since = Date.now();
      const snap = await src.snapshot();
      expect((await src.inspect()).state.status).toBe('running');
      const actions: string[] = [];
      for await (const e of engine.events({ since, until: Date.now() + 200, type: ['container'] }))
        if (e.id === src.ref && !e.action.startsWith('exec')) actions.push(e.action);
      expect(actions).toEqual(['pause', 'unpause']);
      const at = Number(await read(src, '/counter'));
      await expect.poll(() => read(src, '/counter').then(Number), { timeout: 20_000 }).toBeGreaterThan(at);

      await using fork = await snap.fork({ command: ['sleep', '600'], ...NO_NETWORK });
      const counter = Number(await read(fork, '/counter'));
      const log = (await read(fork, '/log')).split('\n').map(Number);
      expect(counter).toBeGreaterThan(5);
      // One consistent moment: the log's last line is the counter the copy saw, none after it.
      expect(log.at(-1)).toBe(counter);
      expect(log).toEqual(Array.from({ length: counter }, (_, i) => i + 1));
      await snap.remove({ force: true });
    },
    T,
  );

  it(
    "deletions in the source's upper dir (whiteouts, an opaque directory) are honoured in a fork",
    async () => {
      const { engine } = await testEngine();
      const src = await Container.run(
        BUSYBOX_REF,
        [
          'sh',
          '-c',
          'ls /usr/sbin | wc -l > /before && rm /bin/true && rm -r /usr/sbin && mkdir /usr/sbin && echo only > /usr/sbin/new',
        ],
        { engine, ...NO_NETWORK },
      );
      expect((await src.wait()).exitCode).toBe(0);
      const snap = await src.snapshot();
      await src.remove();
      await using fork = await snap.fork({ command: ['sleep', '600'], ...NO_NETWORK });
      // The image's /usr/sbin had entries; the fork's holds only what the source made after removing it.
      expect(Number(await read(fork, '/before'))).toBeGreaterThan(0);
      const r = await fork.exec(['sh', '-c', 'test -e /bin/true; echo $?; ls /usr/sbin']);
      expect(r.stdout).toBe('1\nnew\n');
      expect(await read(fork, '/usr/sbin/new')).toBe('only');
      await snap.remove({ force: true });
    },
    T,
  );

  it(
    "removing the source's image (and pruning) while a snapshot exists keeps the snapshot usable",
    async () => {
      const { engine } = await testEngine();
      const src = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo kept > /kept'], { engine, ...NO_NETWORK });
      await src.wait();
      const snap = await src.snapshot();
      await src.remove();
      await new Image(BUSYBOX_REF, { engine }).remove();
      expect(await new Image(BUSYBOX_REF, { engine }).exists()).toBe(false);
      await Image.prune({ engine, all: true });
      const fork = await snap.fork({ command: ['sh', '-c', 'cat /kept; ls /bin/sh'], ...NO_NETWORK });
      expect((await fork.wait()).exitCode).toBe(0);
      expect(await fork.logs()).toBe('kept\n/bin/sh\n');
      await fork.remove();
      await snap.remove();
      // Nothing holds the image's layers any more: a prune of nothing leaves no layer directory behind.
      const layers = join(engine.root, 'layers', 'sha256');
      expect(fs.existsSync(layers) ? fs.readdirSync(layers) : []).toEqual([]);
    },
    T,
  );

  it(
    'remove refuses (IN_USE) while a fork exists, removes forks with force, and leaves nothing on disk',
    async () => {
      const { engine, root } = await testEngine();
      const src = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo x > /x'], { engine, ...NO_NETWORK });
      await src.wait();
      const snap = await src.snapshot();
      const forkA = await snap.fork({ command: ['sleep', '600'], ...NO_NETWORK });
      const forkB = await Container.create({ image: snap, command: ['true'], engine, ...NO_NETWORK });
      await expect(snap.remove()).rejects.toMatchObject({ code: 'IN_USE' });
      expect((await forkA.inspect()).state.status).toBe('running');
      expect(fs.readdirSync(join(root, 'snapshots'))).toContain(snap.id);

      await snap.remove({ force: true });
      await expect(forkA.inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
      await expect(forkB.inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
      expect(fs.readdirSync(join(root, 'snapshots')).filter((n) => n !== 'lock')).toEqual([]);
      expect(await Snapshot.list({ engine })).toEqual([]);
      await expect(snap.inspect()).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(snap.fork()).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await src.remove();
    },
    T,
  );

  it(
    'a fork of a fork: the second snapshot holds the first (IN_USE) until it is removed',
    async () => {
      const { engine } = await testEngine();
      const src = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo 1 > /one'], { engine, ...NO_NETWORK });
      await src.wait();
      const first = await src.snapshot();
      const mid = await first.fork({ command: ['sh', '-c', 'echo 2 > /two; rm /one'], ...NO_NETWORK });
      await mid.wait();
      const second = await mid.snapshot();
      await mid.remove();
      await expect(first.remove({ force: true })).rejects.toMatchObject({ code: 'IN_USE' });
      const last = await second.fork({ command: ['sh', '-c', 'cat /two; test -e /one || echo gone'], ...NO_NETWORK });
      await last.wait();
      expect(await last.logs()).toBe('2\ngone\n');
      await second.remove({ force: true });
      await first.remove();
      expect(await Snapshot.list({ engine })).toEqual([]);
    },
    T,
  );

  it(
    "a fork's diff lists its changes since the snapshot, export holds everything, commit makes one layer over the image",
    async () => {
      const { engine } = await testEngine();
      const src = await Container.run(
        BUSYBOX_REF,
        [
          'sh',
          '-c',
          'echo s > /s; echo s2 > /s2; rm /bin/true; rm -r /usr/sbin; mkdir /usr/sbin; echo n > /usr/sbin/new',
        ],
        { engine, ...NO_NETWORK },
      );
      await src.wait();
      const snap = await src.snapshot();
      const fork = await snap.fork({
        command: ['sh', '-c', 'echo f > /f; rm /s2; echo m > /usr/sbin/more'],
        ...NO_NETWORK,
      });
      await fork.wait();
      const diff = await fork.diff();
      expect(diff).toContainEqual({ path: '/f', kind: 'A' });
      expect(diff).toContainEqual({ path: '/s2', kind: 'D' });
      expect(diff.some((d) => d.path === '/s')).toBe(false);
      const tar = await readTar(fork.export());
      expect(tar.get('s')?.body).toBe('s\n');
      expect(tar.get('f')?.body).toBe('f\n');
      expect(tar.has('s2')).toBe(false);

      const img = await (await fork.commit({ ref: 'test/forked:1' })).inspect();
      expect(img.layers).toHaveLength((await new Image(BUSYBOX_REF, { engine }).inspect()).layers.length + 1);
      await snap.remove({ force: true });
      await src.remove();
      const check = await Container.run(
        'test/forked:1',
        ['sh', '-c', 'cat /s /f; test -e /s2 || echo no-s2; test -e /bin/true || echo no-true; ls /usr/sbin'],
        { engine, ...NO_NETWORK },
      );
      await check.wait();
      expect(await check.logs()).toBe('s\nf\nno-s2\nno-true\nmore\nnew\n');
    },
    T,
  );

  it(
    'Snapshot.list filters by label; what a dead maker or remover left is swept by the next snapshot',
    async () => {
      const { engine, root } = await testEngine();
      const c = await Container.create({ image: BUSYBOX_REF, command: ['true'], engine, ...NO_NETWORK });
      // A maker and a remover killed mid-way (their pid is gone): their directories are leftovers.
      const dead = ['.staging-4194303-1-' + 'a'.repeat(64), '.removing-4194303-1-' + 'b'.repeat(64)];
      for (const d of dead) fs.mkdirSync(join(root, 'snapshots', d, 'fs'), { recursive: true });
      const a = await c.snapshot({ labels: { team: 'a', tier: 'db' } });
      const b = await c.snapshot({ labels: { team: 'b' } });
      expect(fs.readdirSync(join(root, 'snapshots')).sort()).toEqual([a.id, b.id].sort());
      expect((await Snapshot.list({ engine })).map((s) => s.id)).toEqual([b.id, a.id]);
      expect((await Snapshot.list({ engine, label: 'team=a' })).map((s) => s.id)).toEqual([a.id]);
      expect((await Snapshot.list({ engine, label: ['tier'] })).map((s) => s.id)).toEqual([a.id]);
      expect(await Snapshot.list({ engine, label: 'team=c' })).toEqual([]);
      expect((await new Snapshot(a.id.slice(0, 12), { engine }).inspect()).id).toBe(a.id);
      await a.remove();
      await b.remove();
    },
    T,
  );

  it(
    'owners survive between a user-namespaced source, its snapshot and forks with and without one',
    async () => {
      const { engine } = await testEngine();
      const src = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', 'echo x > /owned && chown 1000:2000 /owned && chmod 4750 /owned'],
        { engine, ...NO_NETWORK, userns: 'auto' },
      );
      expect((await src.wait()).exitCode).toBe(0);
      const snap = await src.snapshot();
      for (const userns of [undefined, 'auto'] as const) {
        const fork = await snap.fork({
          command: ['stat', '-c', '%u %g %a', '/owned'],
          ...NO_NETWORK,
          ...(userns ? { userns } : {}),
        });
        expect((await fork.wait()).exitCode).toBe(0);
        expect(await fork.logs()).toBe('1000 2000 4750\n');
      }
      await snap.remove({ force: true });
    },
    T,
  );

  it(
    'bad input is refused with typed errors before anything is made',
    async () => {
      const { engine, root } = await testEngine();
      expect(() => new Snapshot('not-hex', { engine })).toThrow(expect.objectContaining({ field: 'id' }));
      await expect(new Snapshot('ab'.repeat(32), { engine }).inspect()).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(new Container('nope', { engine }).snapshot()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
      const c = await Container.create({ image: BUSYBOX_REF, command: ['true'], engine, ...NO_NETWORK });
      await expect(c.snapshot({ labels: { a: 1 as unknown as string } })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'labels.a',
      });
      await expect(
        new Snapshot('ab'.repeat(32), { engine }).remove({ force: 'yes' as unknown as boolean }),
      ).rejects.toMatchObject({ field: 'force' });
      expect(fs.existsSync(join(root, 'snapshots')) ? fs.readdirSync(join(root, 'snapshots')) : []).toEqual([]);
      const snap = await c.snapshot();
      await expect(snap.fork({ command: ['true'], memory: 'x' } as never)).rejects.toBeInstanceOf(BerthError);
      await expect(snap.fork({ command: ['true'], memory: 'x' } as never)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(await engine.containers.list({ all: true })).toHaveLength(1);
      await snap.remove();
    },
    T,
  );
});
