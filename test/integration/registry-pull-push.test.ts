/**
 * Push and pull against the real registry (Debian's `docker-registry`) on 127.0.0.1, without auth:
 * push the busybox image, pull it into a fresh root, run it; second push skips every blob; a
 * cross-repository mount; pull-if-missing on create; two processes pulling at once.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Container, Engine, Image, type PullProgress, type PushProgress } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { hasRegistry, startRegistry } from '../helpers/registry.js';

const REPO = resolve(import.meta.dirname, '../..');

async function collect<P>(op: AsyncIterable<P>): Promise<P[]> {
  const out: P[] = [];
  for await (const p of op) out.push(p);
  return out;
}

describe.skipIf(!hasRegistry())('registry without auth', () => {
  it('pushes busybox, pulls it into a fresh root and runs it', async () => {
    await using reg = await startRegistry();
    const { engine } = await testEngine();
    const ref = `${reg.host}/test/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    const pushed = await collect<PushProgress>(new Image(ref, { engine }).push());
    expect(pushed.map((p) => p.status)).toContain('Pushed');
    const last = pushed.at(-1)!;
    expect(last.status).toMatch(/^1: digest: sha256:[a-f0-9]{64} size: \d+$/);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(last.status)![1];
    expect((await new Image(ref, { engine }).inspect()).repoDigests).toContain(`${reg.host}/test/busybox@${digest}`);

    // Twice: nothing uploaded again.
    const again = await collect<PushProgress>(new Image(ref, { engine }).push());
    expect(again.map((p) => p.status)).toContain('Layer already exists');
    expect(again.map((p) => p.status)).not.toContain('Pushed');
    expect(again.at(-1)!.status).toBe(last.status);

    // Another repository of the same registry: the layer is mounted.
    const other = `${reg.host}/other/busybox:2`;
    await new Image(BUSYBOX_REF, { engine }).tag(other);
    const mounted = await collect<PushProgress>(new Image(other, { engine }).push());
    expect(mounted.map((p) => p.status)).toContain('Mounted from test/busybox');

    // A fresh root pulls it, unpacking while downloading, and runs it.
    const fresh = await testEngine({ image: false });
    const events = await collect<PullProgress>(new Image(ref, { engine: fresh.engine }).pull());
    const statuses = events.map((e) => e.status);
    expect(statuses).toContain('Pull complete');
    expect(statuses).toContain(`Digest: ${digest}`);
    expect(statuses.at(-1)).toBe(`Status: Downloaded newer image for ${ref}`);
    const info = await new Image(ref, { engine: fresh.engine }).inspect();
    expect(info.id).toBe((await new Image(BUSYBOX_REF, { engine }).inspect()).id);
    expect(info.repoTags).toEqual([ref]);
    expect(info.repoDigests).toEqual([`${reg.host}/test/busybox@${digest}`]);
    const c = await Container.run(ref, ['echo', 'hi'], { engine: fresh.engine });
    expect((await c.wait()).exitCode).toBe(0);
    expect(await c.logs()).toBe('hi\n');

    // Pulled again: nothing downloaded.
    const second = await collect<PullProgress>(new Image(ref, { engine: fresh.engine }).pull());
    expect(second.map((e) => e.status)).toContain('Already exists');
    expect(second.map((e) => e.status)).not.toContain('Downloading');
    expect(second.at(-1)!.status).toBe(`Status: Image is up to date for ${ref}`);

    // By digest.
    const byDigest = await new Image(`${reg.host}/test/busybox@${digest}`, { engine: fresh.engine }).pull();
    expect((await byDigest.inspect()).id).toBe(info.id);
  });

  it('uploads a layer in several chunks', async () => {
    await using reg = await startRegistry();
    const { engine } = await testEngine();
    const chunked = new Engine({ root: engine.root, runRoot: engine.runRoot, uploadChunkSize: 100_000 });
    try {
      const ref = `${reg.host}/chunked/busybox:1`;
      await new Image(BUSYBOX_REF, { engine }).tag(ref);
      const events = await collect<PushProgress>(new Image(ref, { engine: chunked }).push());
      expect(events.filter((e) => e.status === 'Pushing' && (e.current ?? 0) > 0).length).toBeGreaterThan(3);
    } finally {
      chunked.close();
    }
    const fresh = await testEngine({ image: false });
    const img = await new Image(`${reg.host}/chunked/busybox:1`, { engine: fresh.engine }).pull();
    expect((await img.inspect()).id).toBe((await new Image(BUSYBOX_REF, { engine }).inspect()).id);
  });

  it('pulls a missing image when a container is created, as docker run does', async () => {
    await using reg = await startRegistry();
    const { engine } = await testEngine();
    const ref = `${reg.host}/test/busybox:run`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    await new Image(ref, { engine }).push();
    const fresh = await testEngine({ image: false });
    const c = await Container.run(ref, ['echo', 'pulled'], { engine: fresh.engine });
    expect((await c.wait()).exitCode).toBe(0);
    expect(await c.logs()).toBe('pulled\n');
    expect(await new Image(ref, { engine: fresh.engine }).exists()).toBe(true);
  });

  it('reports a missing tag as IMAGE_NOT_FOUND and a dead registry as REGISTRY_UNREACHABLE', async () => {
    await using reg = await startRegistry();
    const { engine } = await testEngine({ image: false });
    await expect(new Image(`${reg.host}/nope/nothing:1`, { engine }).pull()).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      name: 'RegistryError',
      status: 404,
    });
    const host = reg.host;
    await reg.stop();
    const quick = new Engine({
      root: join(engine.root, 'quick'),
      runRoot: join(engine.root, 'quick-run'),
      registryRetries: 1,
      registryRetryDelay: 10,
    });
    await expect(new Image(`${host}/a/b:1`, { engine: quick }).pull()).rejects.toMatchObject({
      code: 'REGISTRY_UNREACHABLE',
    });
    quick.close();
  });

  it('two processes pulling the same image at once leave one layer directory', async () => {
    await using reg = await startRegistry();
    const { engine } = await testEngine();
    const ref = `${reg.host}/test/busybox:mp`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    await new Image(ref, { engine }).push();
    const fresh = await testEngine({ image: false });
    const script = `
      import { Engine, Image } from './src/index.js';
      const engine = new Engine({ root: process.argv[1], runRoot: process.argv[1] + '/run' });
      const events = [];
      for await (const p of new Image(process.argv[2], { engine }).pull()) events.push(p.status);
      engine.close();
      console.log(JSON.stringify(events));
    `;
    const run = () =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, fresh.root, ref], {
        cwd: REPO,
      });
    const [a, b] = await Promise.all([run(), run()]);
    const sa = JSON.parse(a.stdout) as string[];
    const sb = JSON.parse(b.stdout) as string[];
    // One process downloaded the layer; the other found it stored.
    expect([sa.includes('Pull complete'), sb.includes('Pull complete')].filter(Boolean)).toHaveLength(1);
    expect(readdirSync(join(fresh.root, 'layers', 'sha256'))).toHaveLength(1);
    const info = await new Image(ref, { engine: fresh.engine }).inspect();
    expect(info.repoTags).toEqual([ref]);
  });
});
