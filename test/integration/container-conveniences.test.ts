/**
 * Test-framework conveniences on the real kernel: `c.url()`/`c.host()` of a published port
 * fetched over loopback, and `copyTo` of plain files and host directories into running and
 * stopped containers (parents made, never written through a symlink of the container's).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';
import { readTar } from '../helpers/tar.js';

/** The contents of `path` inside `c`, read back through `copyFrom`. */
async function readIn(c: Container, path: string): Promise<{ body: string; mode: number; uid: number }> {
  const tar = await readTar(c.copyFrom(path));
  const base = path.slice(path.lastIndexOf('/') + 1);
  const got = tar.get(base);
  if (!got) throw new Error(`${path} not in the copy`);
  return { body: got.body, mode: got.entry.mode, uid: got.entry.uid };
}

describe('published ports: host() and url()', () => {
  it('url(80) of a busybox httpd published on 127.0.0.1 is fetched over loopback; an unpublished port is NOT_FOUND', async () => {
    const { engine } = await testEngine();
    await using c = await Container.create({
      image: BUSYBOX_REF,
      command: ['httpd', '-f', '-p', '80', '-h', '/www'],
      ports: ['127.0.0.1::80'],
      engine,
    });
    await c.copyTo({ '/www/index.html': 'hello from httpd\n', '/www/a/b.txt': 'nested\n' });
    await c.start();
    const hostPort = await c.port(80);
    expect(await c.host()).toBe('127.0.0.1');
    expect(await c.host(80)).toBe('127.0.0.1');
    expect(await c.url(80)).toBe(`http://127.0.0.1:${hostPort}/`);
    const url = await c.url(80, { path: 'a/b.txt' });
    expect(url).toBe(`http://127.0.0.1:${hostPort}/a/b.txt`);
    await expect
      .poll(
        () =>
          fetch(url).then(
            (r) => r.text(),
            () => '',
          ),
        { timeout: 5000 },
      )
      .toBe('nested\n');
    expect(await (await fetch(await c.url(80))).text()).toBe('hello from httpd\n');
    await expect(c.url(81)).rejects.toMatchObject({ code: 'NOT_FOUND', ref: '81/tcp' });
    await expect(c.host(80, 'udp')).rejects.toMatchObject({ code: 'NOT_FOUND', ref: '80/udp' });
    await expect(c.url(0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'containerPort' });
  });
});

describe('copyTo of plain files', () => {
  for (const running of [true, false]) {
    it(`writes contents and a host directory into a ${running ? 'running' : 'stopped'} container, making missing parents 0755`, async () => {
      const { engine } = await testEngine();
      const host = tempDir('copy-files');
      fs.mkdirSync(join(host, 'site/sub'), { recursive: true });
      fs.writeFileSync(join(host, 'site/index.html'), '<h1>hi</h1>');
      fs.writeFileSync(join(host, 'site/sub/run.sh'), 'echo run', { mode: 0o755 });
      fs.symlinkSync('index.html', join(host, 'site/link'));
      fs.writeFileSync(join(host, 'single.txt'), 'single');
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', running ? 'sleep 60' : 'true'], { engine });
      if (!running) await c.wait();
      await c.copyTo({
        '/app/config.json': JSON.stringify({ debug: true }),
        '/app/deep/er/bytes.bin': Buffer.from([0, 1, 2, 255]),
        '/etc/added.conf': 'k=v\n',
        '/srv/site': { source: join(host, 'site') },
        '/opt/one.txt': { source: join(host, 'single.txt') },
      });
      expect(await readIn(c, '/app/config.json')).toEqual({ body: '{"debug":true}', mode: 0o644, uid: 0 });
      expect((await readIn(c, '/app/deep/er/bytes.bin')).body).toBe(Buffer.from([0, 1, 2, 255]).toString('utf8'));
      expect((await readIn(c, '/etc/added.conf')).body).toBe('k=v\n');
      expect((await readIn(c, '/opt/one.txt')).body).toBe('single');
      const site = await readTar(c.copyFrom('/srv/site'));
      expect(site.get('site/index.html')?.body).toBe('<h1>hi</h1>');
      expect(site.get('site/sub/run.sh')?.entry).toMatchObject({ mode: 0o755, uid: 0 });
      expect(site.get('site/link')?.entry).toMatchObject({ type: 'symlink', linkname: 'index.html' });
      const parents = await readTar(c.copyFrom('/app'));
      expect(parents.get('app/deep')?.entry).toMatchObject({ type: 'directory', mode: 0o755 });
      expect(parents.get('app/deep/er')?.entry).toMatchObject({ type: 'directory', mode: 0o755 });
      // An existing parent keeps its mode (/tmp is not made 0755 by a file written under it).
      expect((await readTar(c.copyFrom('/tmp'))).get('tmp')?.entry.mode).toBe(0o1777);
      await c.copyTo({ '/tmp/x': 'x' });
      expect((await readTar(c.copyFrom('/tmp'))).get('tmp')?.entry.mode).toBe(0o1777);
      if (running)
        expect((await c.exec(['cat', '/app/config.json', '/srv/site/link'])).stdout).toBe('{"debug":true}<h1>hi</h1>');
      // A tar stream keeps working.
      await c.copyTo('/app', await fs.promises.readFile(await tarOf(c, '/opt/one.txt')));
      expect((await readIn(c, '/app/one.txt')).body).toBe('single');
    });
  }

  for (const running of [true, false]) {
    it(`resolves existing parents inside the root of a ${running ? 'running' : 'stopped'} container (symlinks to host paths stay inside it) and refuses a dangling symlink parent`, async () => {
      const { engine } = await testEngine();
      const host = tempDir('copy-files-escape');
      fs.writeFileSync(join(host, 'secret'), 'host secret');
      const script = [
        `ln -s ${host} /out`,
        'ln -s / /up',
        `mkdir -p ${host}`,
        'mkdir /d',
        `ln -s ../../../../${host.slice(1)} /d/rel`,
        'ln -s /nowhere /dangling',
        'touch /done',
      ].join(' && ');
      await using c = await Container.run(BUSYBOX_REF, ['sh', '-c', running ? `${script}; sleep 60` : script], {
        engine,
      });
      if (running) await expect.poll(() => c.exec(['test', '-e', '/done']).then((r) => r.exitCode)).toBe(0);
      else expect((await c.wait()).exitCode).toBe(0);
      await c.copyTo({
        '/out/secret': 'in the container',
        '/out/new/file': 'new',
        '/up/escaped': 'at the root',
        '/d/rel/secret2': 'relative',
      });
      const cat = (p: string) => readIn(c, p).then((r) => r.body);
      expect(await cat(`${host}/secret`)).toBe('in the container');
      expect(await cat(`${host}/new/file`)).toBe('new');
      expect(await cat('/escaped')).toBe('at the root');
      expect(await cat(`${host}/secret2`)).toBe('relative');
      // A missing parent behind a dangling symlink: the extractor makes parents through no symlink.
      await expect(c.copyTo({ '/dangling/x': 'pwned' })).rejects.toMatchObject({ code: 'UNSAFE_LAYER' });
      expect(fs.readdirSync(host)).toEqual(['secret']);
      expect(fs.readFileSync(join(host, 'secret'), 'utf8')).toBe('host secret');
      expect(fs.existsSync('/escaped') || fs.existsSync('/nowhere')).toBe(false);
      expect((await readTar(c.copyFrom('/out'))).get('out')?.entry).toMatchObject({ type: 'symlink', linkname: host });
    });
  }

  it('refuses bad keys and missing host sources before writing anything', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['true'], { engine });
    await c.wait();
    const before = await c.diff();
    await expect(c.copyTo({ 'rel/path': 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.copyTo({ '/a/../b': 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.copyTo({ '/': 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.copyTo({})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.copyTo({ '/ok': 'x', '/missing': { source: '/nonexistent/berth-source' } })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      ref: '/nonexistent/berth-source',
    });
    expect(await c.diff()).toEqual(before);
  });
});

/** A host file holding the tar of `path` in `c`. */
async function tarOf(c: Container, path: string): Promise<string> {
  const file = join(tempDir('tar-of'), 'copy.tar');
  const chunks: Buffer[] = [];
  for await (const chunk of c.copyFrom(path)) chunks.push(chunk as Buffer);
  fs.writeFileSync(file, Buffer.concat(chunks));
  return file;
}
