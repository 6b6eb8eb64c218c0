/**
 * `signal` and `timeout` of pull, push, load and build: a cancelled call rejects with `ABORTED`
 * (the signal's reason as cause) or `TIMEOUT`, before any work when the signal fired already,
 * and leaves nothing half-done: no tag (locally or in the registry), no staging entry, no temp
 * file, no build container. A registry that stops answering mid-transfer is a proxy holding the
 * transfer (test/helpers/stall-proxy.ts), so nothing here depends on timing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { Engine, Image } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { busyboxImage } from '../helpers/busybox.js';
import { hasRegistry, startRegistry, type RegistryServer } from '../helpers/registry.js';
import { startStallProxy } from '../helpers/stall-proxy.js';

/** The entries of `dir`; none when it does not exist. */
const entries = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

/** What a cancelled pull or load must not leave in `root`: staging entries, blob temp files, layers. */
function expectNothingStaged(root: string): void {
  expect(entries(join(root, 'layers', 'staging'))).toEqual([]);
  expect(entries(join(root, 'blobs', 'ingest'))).toEqual([]);
  expect(entries(join(root, 'layers', 'sha256'))).toEqual([]);
}

/** Whether the registry has the tag `repo:tag`. */
async function registryHasTag(reg: RegistryServer, repo: string, tag: string): Promise<boolean> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  return res.status === 200;
}

/** A registry holding busybox as `test/busybox:1`. */
async function registryWithBusybox(engine: Engine): Promise<RegistryServer> {
  const reg = await startRegistry();
  const ref = `${reg.host}/test/busybox:1`;
  await new Image(BUSYBOX_REF, { engine }).tag(ref);
  await new Image(ref, { engine }).push();
  return reg;
}

const isLayerBlob = (method: string | undefined, url: string | undefined): boolean =>
  method === 'GET' && /\/blobs\/sha256:/.test(url ?? '');

describe.skipIf(!hasRegistry())('pull', () => {
  it('an already-aborted signal rejects with ABORTED (its reason as cause) and fetches nothing', async () => {
    const { engine } = await testEngine();
    await using reg = await registryWithBusybox(engine);
    const fresh = await testEngine({ image: false });
    const reason = new Error('not now');
    const op = new Image(`${reg.host}/test/busybox:1`, { engine: fresh.engine }).pull({
      signal: AbortSignal.abort(reason),
    });
    await expect(op).rejects.toMatchObject({ code: 'ABORTED', name: 'AbortedError', cause: reason });
    expect(op.events).toEqual([]);
    expect(await Image.list({ engine: fresh.engine })).toEqual([]);
    expect(entries(join(fresh.root, 'blobs', 'sha256'))).toEqual([]);
  });

  it('aborted while a layer downloads: ABORTED, no image, no partial layer, no temp file', async () => {
    const { engine } = await testEngine();
    await using reg = await registryWithBusybox(engine);
    const fresh = await testEngine({ image: false });
    await using proxy = await startStallProxy(reg.url, (req) =>
      isLayerBlob(req.method, req.url) ? 'body' : undefined,
    );
    const ac = new AbortController();
    const op = new Image(`${proxy.host}/test/busybox:1`, { engine: fresh.engine }).pull({ signal: ac.signal });
    const reading = (async () => {
      for await (const p of op) {
        if (p.status !== 'Downloading') continue;
        await proxy.stalled; // the layer is half sent, and no more comes
        ac.abort(new Error('user gave up'));
      }
    })();
    await expect(reading).rejects.toMatchObject({ code: 'ABORTED', cause: { message: 'user gave up' } });
    expect(await Image.list({ engine: fresh.engine })).toEqual([]);
    expectNothingStaged(fresh.root);
  });

  it('timeout while the registry holds a layer half sent: TIMEOUT, no image, no partial layer, no temp file', async () => {
    const { engine } = await testEngine();
    await using reg = await registryWithBusybox(engine);
    const fresh = await testEngine({ image: false });
    await using proxy = await startStallProxy(reg.url, (req) =>
      isLayerBlob(req.method, req.url) ? 'body' : undefined,
    );
    const op = new Image(`${proxy.host}/test/busybox:1`, { engine: fresh.engine }).pull({ timeout: 2000 });
    await expect(op).rejects.toMatchObject({ code: 'TIMEOUT', name: 'TimeoutError' });
    expect(await Image.list({ engine: fresh.engine })).toEqual([]);
    expectNothingStaged(fresh.root);
  });

  it('refuses a timeout that is not a positive whole number of ms (or beyond a timer), and a non-signal', async () => {
    const { engine } = await testEngine({ image: false });
    const img = new Image('127.0.0.1:1/a/b:1', { engine });
    for (const timeout of [0, -1, 1.5, Infinity, Number.NaN, 2 ** 31])
      await expect(img.pull({ timeout })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'timeout' });
    await expect(img.pull({ signal: {} as AbortSignal })).rejects.toMatchObject({ field: 'signal' });
  });
});

describe.skipIf(!hasRegistry())('push', () => {
  it('an already-aborted signal rejects with ABORTED and leaves the registry without the tag', async () => {
    await using reg = await startRegistry();
    const { engine } = await testEngine();
    const ref = `${reg.host}/test/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    const op = new Image(ref, { engine }).push({ signal: AbortSignal.abort() });
    await expect(op).rejects.toMatchObject({ code: 'ABORTED' });
    expect(op.events).toEqual([]);
    expect(await registryHasTag(reg, 'test/busybox', '1')).toBe(false);
  });

  it('aborted while a layer uploads: ABORTED, and the registry has no tag', async () => {
    await using reg = await startRegistry();
    await using proxy = await startStallProxy(reg.url, (req) =>
      req.method === 'PATCH' || req.method === 'PUT' ? 'response' : undefined,
    );
    const { engine } = await testEngine();
    const ref = `${proxy.host}/test/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    const ac = new AbortController();
    const op = new Image(ref, { engine }).push({ signal: ac.signal });
    op.catch(() => undefined);
    await proxy.stalled;
    ac.abort();
    await expect(op).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await registryHasTag(reg, 'test/busybox', '1')).toBe(false);
  });

  it('timeout while the registry holds a layer upload: TIMEOUT, and the registry has no tag', async () => {
    await using reg = await startRegistry();
    await using proxy = await startStallProxy(reg.url, (req) =>
      req.method === 'PATCH' || req.method === 'PUT' ? 'response' : undefined,
    );
    const { engine } = await testEngine();
    const ref = `${proxy.host}/test/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    await expect(new Image(ref, { engine }).push({ timeout: 2000 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await registryHasTag(reg, 'test/busybox', '1')).toBe(false);
  });
});

describe('load', () => {
  /** busybox saved as a docker-archive. */
  async function archive(): Promise<Buffer> {
    const { engine } = await testEngine();
    return buffer(new Image(BUSYBOX_REF, { engine }).save());
  }

  it('an already-aborted signal rejects with ABORTED and stores nothing', async () => {
    const bytes = await archive();
    const { engine, root } = await testEngine({ image: false });
    const reason = new Error('stop');
    await expect(Image.load(bytes, { engine, signal: AbortSignal.abort(reason) })).rejects.toMatchObject({
      code: 'ABORTED',
      cause: reason,
    });
    expect(await Image.list({ engine })).toEqual([]);
    expectNothingStaged(root);
  });

  it('aborted while a layer loads: ABORTED, nothing tagged, nothing staged', async () => {
    const bytes = await archive();
    const { engine, root } = await testEngine({ image: false });
    const ac = new AbortController();
    const op = Image.load(bytes, { engine, signal: ac.signal });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const p of op) {
        seen.push(p.status);
        if (p.status === 'Loading layer') ac.abort();
      }
    })();
    await expect(reading).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toContain('Loading layer');
    expect(await Image.list({ engine })).toEqual([]);
    expectNothingStaged(root);
  });

  it('operation.abort() counts as the caller’s signal: ABORTED with its reason, nothing tagged', async () => {
    const bytes = await archive();
    const { engine, root } = await testEngine({ image: false });
    const op = Image.load(bytes, { engine });
    const reason = new Error('changed my mind');
    op.abort(reason);
    await expect(op).rejects.toMatchObject({ code: 'ABORTED', cause: reason });
    expect(await Image.list({ engine })).toEqual([]);
    expectNothingStaged(root);
  });

  it('timeout while the archive streams in (the stream stops sending): TIMEOUT, nothing tagged, nothing staged', async () => {
    const bytes = await archive();
    const { engine, root } = await testEngine({ image: false });
    const stream = new PassThrough();
    stream.write(bytes.subarray(0, 64 * 1024)); // and never more
    await expect(Image.load(stream, { engine, timeout: 1000 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(stream.destroyed).toBe(true);
    expect(await Image.list({ engine })).toEqual([]);
    expectNothingStaged(root);
  });
});

describe('import', () => {
  it('an already-aborted signal rejects with ABORTED (its reason as cause) and stores nothing', async () => {
    const { tar } = await busyboxImage();
    const { engine, root } = await testEngine({ image: false });
    const reason = new Error('stop');
    await expect(
      Image.import(tar, { engine, ref: 'never:1', signal: AbortSignal.abort(reason) }),
    ).rejects.toMatchObject({ code: 'ABORTED', cause: reason });
    expect(await Image.list({ engine })).toEqual([]);
    expectNothingStaged(root);
  });

  it('timeout while the rootfs streams in (the stream stops sending): TIMEOUT, nothing tagged, nothing staged', async () => {
    const bytes = readFileSync((await busyboxImage()).tar);
    const { engine, root } = await testEngine({ image: false });
    const stream = new PassThrough();
    stream.write(bytes.subarray(0, 64 * 1024)); // and never more
    await expect(Image.import(stream, { engine, ref: 'slow:1', timeout: 1000 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    expect(await Image.list({ engine })).toEqual([]);
    expectNothingStaged(root);
  });
});

describe('build', () => {
  it('an already-aborted signal rejects with ABORTED and runs nothing', async () => {
    const { engine } = await testEngine();
    const op = Image.build({
      engine,
      context: { Dockerfile: `FROM ${BUSYBOX_REF}\nRUN true` },
      tag: 'never:1',
      signal: AbortSignal.abort(),
    });
    await expect(op).rejects.toMatchObject({ code: 'ABORTED' });
    expect(op.events).toEqual([]);
    expect(await new Image('never:1', { engine }).exists()).toBe(false);
  });

  it('aborted during a RUN step: ABORTED, its container removed, nothing tagged', async () => {
    const { engine } = await testEngine();
    const ac = new AbortController();
    const op = Image.build({
      engine,
      context: { Dockerfile: `FROM ${BUSYBOX_REF}\nRUN echo started; sleep 60` },
      tag: 'cancelled:1',
      signal: ac.signal,
    });
    const reading = (async () => {
      for await (const p of op) if (p.type === 'output') ac.abort(new Error('enough'));
    })();
    await expect(reading).rejects.toMatchObject({ code: 'ABORTED', cause: { message: 'enough' } });
    expect(await new Image('cancelled:1', { engine }).exists()).toBe(false);
    expect(await engine.containers.list({ all: true })).toEqual([]);
  });

  it('timeout during a RUN step that never ends: TIMEOUT, its container removed, nothing tagged', async () => {
    const { engine } = await testEngine();
    const op = Image.build({
      engine,
      context: { Dockerfile: `FROM ${BUSYBOX_REF}\nRUN sleep 600` },
      tag: 'slow:1',
      timeout: 5000,
    });
    await expect(op).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await new Image('slow:1', { engine }).exists()).toBe(false);
    expect(await engine.containers.list({ all: true })).toEqual([]);
  });
});
