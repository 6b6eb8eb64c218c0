/**
 * Container file operations on the real kernel: diff, export, commit, copy in and out of running
 * and stopped containers (never escaping the root through symlinks), and rename.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, Image } from '../../src/index.js';
import { END_OF_ARCHIVE, encodeHeader } from '../../src/image/tar-writer.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';
import { readTar } from '../helpers/tar.js';

type Spec = { name: string; type?: 'file' | 'directory' | 'symlink'; body?: string; linkname?: string; mode?: number };

function makeTar(entries: Spec[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = Buffer.from(e.body ?? '');
    parts.push(
      encodeHeader({
        name: type === 'directory' ? `${e.name}/` : e.name,
        type,
        mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
        uid: 0,
        gid: 0,
        size: type === 'file' ? body.length : 0,
        mtime: 1_700_000_000,
        ...(e.linkname ? { linkname: e.linkname } : {}),
      }),
    );
    if (type === 'file') {
      parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

describe('container file system', () => {
  it('diff lists added, changed and deleted paths', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(
      BUSYBOX_REF,
      [
        'sh',
        '-c',
        'mkdir -p /new/sub && echo x > /new/sub/f && echo y >> /etc/passwd && rm /bin/true && touch /done; sleep 60',
      ],
      { engine },
    );
    await expect.poll(() => c.exec(['test', '-e', '/done']).then((r) => r.exitCode)).toBe(0);
    const d = await c.diff();
    expect(d.some((x) => x.path === '/etc/hosts' || x.path === '/etc/resolv.conf')).toBe(false);
    expect(d).toEqual(
      expect.arrayContaining([
        { path: '/new', kind: 'A' },
        { path: '/new/sub', kind: 'A' },
        { path: '/new/sub/f', kind: 'A' },
        { path: '/etc', kind: 'C' },
        { path: '/etc/passwd', kind: 'C' },
        { path: '/bin', kind: 'C' },
        { path: '/bin/true', kind: 'D' },
      ]),
    );
  });

  it('exports the union of the upper dir over the image', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'echo hello > /hello && rm /bin/true && ln -s /hello /link'],
      { engine },
    );
    await c.wait();
    const tar = await readTar(c.export());
    expect(tar.get('hello')?.body).toBe('hello\n');
    expect(tar.get('link')?.entry).toMatchObject({ type: 'symlink', linkname: '/hello' });
    expect(tar.has('bin/true')).toBe(false);
    expect(tar.get('bin/sh')).toBeDefined();
    expect(tar.get('etc')?.entry.type).toBe('directory');
    await c.remove();
  });

  it('exports a running container too', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo live > /live && touch /done; sleep 60'], {
      engine,
    });
    await expect.poll(() => c.exec(['test', '-e', '/done']).then((r) => r.exitCode)).toBe(0);
    const tar = await readTar(c.export());
    expect(tar.get('live')?.body).toBe('live\n');
    expect(tar.get('bin/sh')).toBeDefined();
  });

  it('commits a container as an image that runs with its files and config', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo committed > /data.txt && rm /bin/true'], {
      engine,
      env: { FOO: 'bar' },
    });
    await c.wait();
    const img = await c.commit({
      ref: 'test/committed:1',
      changes: ['LABEL stage=one', 'CMD ["cat", "/data.txt"]'],
      message: 'snap',
      author: 'me',
    });
    const info = await img.inspect();
    expect(info.config.labels).toMatchObject({ stage: 'one' });
    expect(info.config.env).toContain('FOO=bar');
    expect(info.config.cmd).toEqual(['cat', '/data.txt']);
    expect(info.layers.length).toBeGreaterThan(1);
    await using r = await Container.run('test/committed:1', undefined, { engine });
    await r.wait();
    expect(await r.logs()).toBe('committed\n');
    await using r2 = await Container.run('test/committed:1', ['sh', '-c', 'test -e /bin/true; echo $?'], { engine });
    await r2.wait();
    expect(await r2.logs()).toBe('1\n');
    await c.remove();
    await new Image('test/committed:1', { engine }).exists();
  });

  for (const running of [true, false]) {
    it(`copies in and out of a ${running ? 'running' : 'stopped'} container`, async () => {
      const { engine } = await testEngine();
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', running ? 'mkdir /dst; sleep 60' : 'mkdir /dst'], {
        engine,
      });
      if (running) await expect.poll(() => c.exec(['test', '-d', '/dst']).then((r) => r.exitCode)).toBe(0);
      else await c.wait();
      await c.copyTo(
        '/dst',
        makeTar([
          { name: 'dir', type: 'directory' },
          { name: 'dir/a.txt', body: 'A', mode: 0o600 },
          { name: 'dir/l', type: 'symlink', linkname: '../../etc/passwd' },
        ]),
      );
      await c.copyTo('/etc', makeTar([{ name: 'passwd2', body: 'pw' }]));
      const tar = await readTar(c.copyFrom('/dst/dir'));
      expect(tar.get('dir/a.txt')).toMatchObject({ body: 'A', entry: { mode: 0o600 } });
      expect(tar.get('dir/l')?.entry).toMatchObject({ type: 'symlink', linkname: '../../etc/passwd' });
      const etc = await readTar(c.copyFrom('/etc/passwd2'));
      expect([...etc.keys()]).toEqual(['passwd2']);
      expect(etc.get('passwd2')?.body).toBe('pw');
      // An image file is read through the union.
      expect((await readTar(c.copyFrom('/etc/group'))).get('group')?.body).toContain('root:');
      if (running) expect((await c.exec(['cat', '/dst/dir/a.txt', '/etc/passwd2'])).stdout).toBe('Apw');
      else
        expect(await c.diff()).toEqual(
          expect.arrayContaining([
            { path: '/dst/dir/a.txt', kind: 'A' },
            { path: '/etc/passwd2', kind: 'A' },
          ]),
        );
      await expect(c.copyTo('/nope', makeTar([{ name: 'x', body: 'x' }]))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(readTar(c.copyFrom('/nope'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it(`never escapes the root of a ${running ? 'running' : 'stopped'} container through symlinks`, async () => {
      const { engine } = await testEngine();
      const host = tempDir('host-target');
      fs.writeFileSync(join(host, 'secret'), 'host secret');
      // /etc holds mount points while the container runs: the running case uses /e -> /; the
      // stopped one gets /etc -> / written into its upper dir afterwards.
      const e = running ? '/e' : '/etc';
      const script = `ln -s / /e && ln -s ${host} /x && ln -s ${host}/secret /s && mkdir /d && ln -s ${host} /d/out && mkdir -p ${host} && touch /done`;
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', running ? `${script}; sleep 60` : script], {
        engine,
      });
      if (running) await expect.poll(() => c.exec(['test', '-e', '/done']).then((r) => r.exitCode)).toBe(0);
      else {
        await c.wait();
        const upper = engine.containers.paths(await c.id()).upper;
        fs.rmSync(join(upper, 'etc'), { recursive: true, force: true });
        fs.symlinkSync('/', join(upper, 'etc'));
      }
      // Destination symlinks are followed inside the root.
      await c.copyTo('/x', makeTar([{ name: 'secret', body: 'pwned' }]));
      await expect(c.copyTo('/x', makeTar([{ name: 'secret', body: 'pwned' }]))).resolves.toBeUndefined();
      expect(fs.readFileSync(join(host, 'secret'), 'utf8')).toBe('host secret');
      // Entries are never written through a symlink, nor above the destination.
      await expect(c.copyTo('/d', makeTar([{ name: 'out/secret', body: 'pwned' }]))).rejects.toMatchObject({
        code: 'UNSAFE_LAYER',
      });
      await expect(c.copyTo('/d', makeTar([{ name: '../../../../secret', body: 'pwned' }]))).rejects.toMatchObject({
        code: 'UNSAFE_LAYER',
      });
      await c.copyTo(e, makeTar([{ name: 'etc-in-root', body: 'ok' }]));
      await c.copyTo(`${e}/d`, makeTar([{ name: 'in-d', body: 'ok' }]));
      expect(fs.readFileSync(join(host, 'secret'), 'utf8')).toBe('host secret');
      expect(fs.readdirSync(host)).toEqual(['secret']);
      // Reading: the host file is not reachable.
      const viaLink = await readTar(c.copyFrom('/x/secret'));
      expect(viaLink.get('secret')?.body).toBe('pwned'); // the container's own /x/secret (the dir made inside the root)
      const s = await readTar(c.copyFrom('/s'));
      expect(s.get('s')?.entry).toMatchObject({ type: 'symlink' });
      await expect(readTar(c.copyFrom('/s/'))).resolves.toBeDefined();
      expect((await readTar(c.copyFrom(`${e}/etc-in-root`))).get('etc-in-root')?.body).toBe('ok');
      expect((await readTar(c.copyFrom('/d/in-d'))).get('in-d')?.body).toBe('ok');
      expect((await readTar(c.copyFrom(`${e}/../../s`))).get('s')?.entry.type).toBe('symlink');
    });
  }

  it('renames a container, refusing a taken name', async () => {
    const { engine } = await testEngine();
    const a = await Container.create({ image: BUSYBOX_REF, command: ['true'], name: 'first', engine });
    await Container.create({ image: BUSYBOX_REF, command: ['true'], name: 'taken', engine });
    await expect(a.rename('taken')).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
    await a.rename('second');
    expect((await new Container('second', { engine }).inspect()).id).toBe(await a.id());
    await expect(new Container('first', { engine }).inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    await Container.create({ image: BUSYBOX_REF, command: ['true'], name: 'first', engine });
    await expect(a.rename('bad name')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
