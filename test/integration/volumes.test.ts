/**
 * Volumes and mounts on the real kernel, asserted from inside containers.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, Image, Volume } from '../../src/index.js';
import { busyboxImage } from '../helpers/busybox.js';
import { BUSYBOX_REF, testEngine, INIT_PATHS, NO_NETWORK, withInitPath } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

type Engine = Awaited<ReturnType<typeof testEngine>>['engine'];

async function run(engine: Engine, command: string[], opts: Record<string, unknown> = {}, image = BUSYBOX_REF) {
  // Loopback only: no network to wire.
  const c = await Container.run(image, command, { ...NO_NETWORK, engine, ...opts });
  const { exitCode } = await c.wait();
  const text = await c.logs();
  return { c, exitCode, text };
}

const mounted = (path: string) => readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${path} `);

describe('named volumes', () => {
  it('keeps a file written by one container for the next, and is idempotent to create', async () => {
    const { engine } = await testEngine();
    const v = await new Volume('data', { engine }).create({ labels: { k: 'v' } });
    await new Volume('data', { engine }).create();
    await run(engine, ['sh', '-c', 'echo kept > /data/f'], { volumes: ['data:/data'] });
    const { text } = await run(engine, ['cat', '/data/f'], {
      mounts: [{ type: 'volume', source: 'data', target: '/data' }],
    });
    expect(text).toBe('kept\n');
    const info = await v.inspect();
    expect(info).toMatchObject({ name: 'data', driver: 'local', labels: { k: 'v' }, anonymous: false });
    expect(readFileSync(join(info.mountpoint, 'f'), 'utf8')).toBe('kept\n');
    expect(info.usedBy).toHaveLength(2);
  });

  it('is shared by two running containers that see each other’s writes', async () => {
    const { engine } = await testEngine();
    const a = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'echo from-a > /s/a; while [ ! -f /s/b ]; do sleep 0.05; done; cat /s/b'],
      { engine, volumes: ['shared:/s'] },
    );
    const b = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'while [ ! -f /s/a ]; do sleep 0.05; done; cat /s/a; echo from-b > /s/b'],
      { engine, volumes: ['shared:/s'] },
    );
    expect(await a.wait()).toEqual({ exitCode: 0 });
    expect(await b.wait()).toEqual({ exitCode: 0 });
    expect(await a.logs()).toBe('from-b\n');
    expect(await b.logs()).toBe('from-a\n');
  });

  it('refuses to remove a volume in use, unless forced; lists and prunes', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({ image: BUSYBOX_REF, command: ['true'], volumes: ['busy:/b', '/anon'], engine });
    await expect(new Volume('busy', { engine }).remove()).rejects.toMatchObject({ code: 'IN_USE' });
    expect((await Volume.list({ engine, dangling: false })).map((v) => v.name)).toContain('busy');
    const anon = (await c.inspect()).id;
    void anon;
    await c.remove({ volumes: true });
    const left = await Volume.list({ engine });
    expect(left.map((v) => v.name)).toEqual(['busy']); // the anonymous one went with the container
    expect(await Volume.prune({ engine })).toEqual([]); // named volumes are kept without `all`
    expect(await Volume.prune({ engine, all: true })).toEqual(['busy']);
  });
});

for (const path of INIT_PATHS)
  describe(`bind mounts (${path} init)`, () => {
    withInitPath(path);

    it('binds a host directory read-write and read-only (EROFS inside)', async () => {
      const { engine } = await testEngine();
      const host = tempDir('bind');
      writeFileSync(join(host, 'in'), 'host data\n');
      const rw = await run(engine, ['sh', '-c', 'cat /h/in; echo out > /h/out'], {
        mounts: [{ type: 'bind', source: host, target: '/h' }],
      });
      expect(rw.text).toBe('host data\n');
      expect(readFileSync(join(host, 'out'), 'utf8')).toBe('out\n');
      const ro = await run(engine, ['sh', '-c', 'echo x > /h/x 2>&1; echo rc=$?'], { volumes: [`${host}:/h:ro`] });
      expect(ro.text).toMatch(/Read-only file system/);
      expect(existsSync(join(host, 'x'))).toBe(false);
    });

    it('applies bind propagation inside the container', async () => {
      const { engine } = await testEngine();
      const host = tempDir('bind-prop');
      const show = ['sh', '-c', 'grep " /p " /proc/self/mountinfo'];
      const shared = await run(engine, show, {
        mounts: [{ type: 'bind', source: host, target: '/p', propagation: 'rshared' }],
      });
      expect(shared.text).toMatch(/ shared:\d+/);
      const priv = await run(engine, show, { volumes: [`${host}:/p:rprivate`] });
      expect(priv.text).not.toMatch(/ shared:| master:/);
      const slave = await run(engine, show, { volumes: [`${host}:/p:rshared`] });
      expect(slave.text).toMatch(/ shared:\d+/);
    });

    it('errors on a missing source for mounts, and creates it for the volumes shorthand', async () => {
      const { engine } = await testEngine();
      const base = tempDir('bind-missing');
      await expect(
        Container.create({
          image: BUSYBOX_REF,
          engine,
          mounts: [{ type: 'bind', source: join(base, 'nope'), target: '/x' }],
        }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'mounts.0.source' });
      expect(existsSync(join(base, 'nope'))).toBe(false);
      await run(engine, ['touch', '/x/made'], { volumes: [`${join(base, 'made')}:/x`] });
      expect(existsSync(join(base, 'made', 'made'))).toBe(true);
    });

    it('rejects .. in targets, and a symlinked target cannot reach the host', async () => {
      const { engine } = await testEngine();
      const host = tempDir('bind-sym');
      await expect(
        Container.create({ image: BUSYBOX_REF, engine, volumes: [`${host}:/a/../etc`] }),
      ).rejects.toMatchObject({ field: 'volumes.0.target' });
      // An image whose /data is a symlink to /etc: the mount lands on the container's /etc, never the host's.
      const { dir } = await busyboxImage();
      const rootfs = tempDir('symimg');
      const { cpSync, symlinkSync } = await import('node:fs');
      cpSync(dir, rootfs, { recursive: true, verbatimSymlinks: true });
      symlinkSync('/etc', join(rootfs, 'data'));
      await Image.import(rootfs, { ref: 'test/symlink:1', engine });
      writeFileSync(join(host, 'passwd'), 'from the volume\n');
      const hostPasswd = readFileSync('/etc/passwd', 'utf8');
      const { text } = await run(engine, ['cat', '/etc/passwd'], { volumes: [`${host}:/data`] }, 'test/symlink:1');
      expect(text).toBe('from the volume\n');
      expect(readFileSync('/etc/passwd', 'utf8')).toBe(hostPasswd);
      expect(mounted('/etc')).toBe(false);
    });
  });

for (const path of INIT_PATHS)
  describe(`tmpfs (${path} init)`, () => {
    withInitPath(path);

    it('mounts a tmpfs with its size limit and mode', async () => {
      const { engine } = await testEngine();
      const { text } = await run(
        engine,
        [
          'sh',
          '-c',
          'stat -c %a /t; dd if=/dev/zero of=/t/big bs=1024 count=2048 2>&1 | grep -o "No space left on device"; du -k /t/big | cut -f1',
        ],
        { mounts: [{ type: 'tmpfs', target: '/t', tmpfsSize: '1m', tmpfsMode: 0o1777 }] },
      );
      expect(text.trim().split('\n')).toEqual(['1777', 'No space left on device', '1024']);
    });

    it('local driver type=tmpfs volumes are mounted while used and unmounted after', async () => {
      const { engine } = await testEngine();
      const v = await new Volume('scratch', { engine }).create({ driverOpts: { type: 'tmpfs', o: 'size=2m' } });
      const mp = (await v.inspect()).mountpoint;
      const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'df -k /s | tail -1 | awk "{print \\$2}"; sleep 60'], {
        engine,
        volumes: ['scratch:/s'],
      });
      expect(mounted(mp)).toBe(true);
      await expect.poll(() => c.logs()).toBe('2048\n');
      await c.stop({ timeout: 0 });
      expect(mounted(mp)).toBe(false);
      await c.remove();
      await v.remove();
      await expect(
        new Volume('scratch', { engine }).create({ driverOpts: { type: 'tmpfs', o: 'size=lots' } }),
      ).rejects.toMatchObject({ field: 'driverOpts.o' });
    });
  });

for (const path of INIT_PATHS)
  describe(`copy-up and image volumes (${path} init)`, () => {
    withInitPath(path);

    it("copies owners, modes, times and symlinks (not followed), and no FIFO; the volume takes the directory's owner and mode", async () => {
      const { engine } = await testEngine();
      const { dir } = await busyboxImage();
      const rootfs = tempDir('copyup-img');
      const fs = await import('node:fs');
      fs.cpSync(dir, rootfs, { recursive: true, verbatimSymlinks: true });
      const data = join(rootfs, 'data');
      fs.mkdirSync(join(data, 'sub/deeper'), { recursive: true });
      fs.writeFileSync(join(data, 'sub/deeper/file'), 'deep\n');
      fs.writeFileSync(join(data, 'owned'), 'x'.repeat(100_000));
      fs.chownSync(join(data, 'owned'), 1000, 2000);
      fs.chmodSync(join(data, 'owned'), 0o4750);
      fs.chownSync(join(data, 'sub'), 3000, 3000);
      fs.chmodSync(join(data, 'sub'), 0o700);
      fs.symlinkSync('/etc/passwd', join(data, 'link'));
      fs.lchownSync(join(data, 'link'), 4000, 4000);
      fs.symlinkSync('sub/deeper/file', join(data, 'rel'));
      (await import('node:child_process')).execFileSync('mkfifo', [join(data, 'fifo')]);
      // A data directory made for the image's own user: the new volume is that user's too.
      fs.chownSync(data, 5000, 5001);
      fs.chmodSync(data, 0o750);
      const when = new Date('2020-02-02T02:02:02Z');
      for (const p of ['owned', 'sub/deeper/file', 'sub/deeper', 'sub', '.']) fs.utimesSync(join(data, p), when, when);
      for (const p of ['link', 'rel']) fs.lutimesSync(join(data, p), when, when);
      await Image.import(rootfs, { ref: 'test/copyup:1', engine });
      const list = [
        'sh',
        '-c',
        'cd /data && find . | sort | while read f; do stat -c "%n %u %g %a %Y %F" "$f"; done; readlink link; readlink rel; cat rel; wc -c < owned',
      ];
      const { text: image } = await run(engine, list, {}, 'test/copyup:1');
      expect(image).toContain('./fifo 0 0 644');
      expect(image).toContain('./owned 1000 2000 4750 1580608922 regular file');
      expect(image).toContain('./link 4000 4000 777 1580608922 symbolic link');
      expect(image).toContain('/etc/passwd\nsub/deeper/file\ndeep\n100000\n');
      const { text: copied } = await run(engine, list, { volumes: ['copied:/data'] }, 'test/copyup:1');
      // The volume's own directory takes the owner and mode of the image's (its times are its own):
      // everything under it is copied.
      expect(image.startsWith('. 5000 5001 750 1580608922 directory\n')).toBe(true);
      expect(copied.startsWith('. 5000 5001 750 ')).toBe(true);
      const under = (t: string) => t.split('\n').filter((l) => !l.startsWith('. ') && !l.startsWith('./fifo '));
      expect(under(copied).join('\n')).toBe(under(image).join('\n'));
      expect(under(image).length).toBeGreaterThan(8);
    });

    it('fills a new empty volume with the image’s content once, never overwriting later data', async () => {
      const { engine } = await testEngine();
      const { text: first } = await run(engine, ['sh', '-c', 'ls /etc/passwd && echo changed > /etc/passwd'], {
        volumes: ['etcvol:/etc'],
      });
      expect(first).toBe('/etc/passwd\n');
      const { text: second } = await run(engine, ['cat', '/etc/passwd'], { volumes: ['etcvol:/etc'] });
      expect(second).toBe('changed\n');
      const { text: nocopy } = await run(engine, ['ls', '/etc'], {
        mounts: [{ type: 'volume', source: 'empty', target: '/etc', nocopy: true }],
      });
      expect(nocopy).toBe('');
    });

    it('makes anonymous volumes for the image’s VOLUME entries, removed with the container', async () => {
      const { engine } = await testEngine();
      const { tar } = await busyboxImage();
      await Image.import(tar, { ref: 'test/withvol:1', engine, changes: ['VOLUME /var/data'] });
      const c = await Container.run(
        'test/withvol:1',
        ['sh', '-c', 'echo x > /var/data/x; grep -c " /var/data " /proc/self/mountinfo'],
        { engine },
      );
      await c.wait();
      expect(await c.logs()).toBe('1\n');
      const vols = await Volume.list({ engine });
      expect(vols).toHaveLength(1);
      expect(vols[0]!.anonymous).toBe(true);
      await c.remove({ volumes: true });
      expect(await Volume.list({ engine })).toEqual([]);
    });

    it('mounts another container’s volumes with volumesFrom', async () => {
      const { engine } = await testEngine();
      const src = await Container.create({
        image: BUSYBOX_REF,
        command: ['true'],
        volumes: ['vf:/shared'],
        engine,
        name: 'src',
      });
      void src;
      await run(engine, ['sh', '-c', 'echo hi > /shared/f'], { volumesFrom: ['src'] });
      const { text } = await run(engine, ['sh', '-c', 'cat /shared/f; touch /shared/g 2>&1 | grep -o Read-only'], {
        volumesFrom: ['src:ro'],
      });
      expect(text).toBe('hi\nRead-only\n');
    });

    it('leaves no mount behind once the containers are gone', async () => {
      const { engine, root } = await testEngine();
      const host = tempDir('bind-leak');
      mkdirSync(join(host, 'd'));
      const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
        engine,
        volumes: ['v1:/v1', `${host}:/h`],
        mounts: [{ type: 'tmpfs', target: '/t' }],
      });
      await c.remove({ force: true, volumes: true });
      const info = readFileSync('/proc/self/mountinfo', 'utf8');
      expect(info).not.toContain(root);
      expect(info).not.toContain(host);
    });
  });

describe('local driver devices', () => {
  it('mounts a file system image (through a loop device) while a container uses it', async () => {
    const { engine } = await testEngine();
    const dir = tempDir('fsimage');
    const img = join(dir, 'disk.img');
    const { execFileSync } = await import('node:child_process');
    execFileSync('truncate', ['-s', '16M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    const v = await new Volume('disk', { engine }).create({ driverOpts: { type: 'ext4', device: img, o: 'loop' } });
    const mp = (await v.inspect()).mountpoint;
    const { text } = await run(engine, ['sh', '-c', 'echo on-disk > /d/f; grep " /d " /proc/mounts | cut -d" " -f3'], {
      volumes: ['disk:/d'],
    });
    expect(text).toBe('ext4\n');
    expect(mounted(mp)).toBe(false); // unmounted once no container uses it; the loop device clears itself
    const again = await run(engine, ['cat', '/d/f'], { volumes: ['disk:/d'] });
    expect(again.text).toBe('on-disk\n');
    await expect(v.remove()).rejects.toMatchObject({ code: 'IN_USE' });
    await v.remove({ force: true });
    expect(mounted(mp)).toBe(false);
  });
});
