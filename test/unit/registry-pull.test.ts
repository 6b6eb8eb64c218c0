/**
 * Pull through the Engine with undici's MockAgent as the registry: platform selection from an
 * index, a layer with a wrong digest leaving nothing behind, option validation before any
 * request, credentials from a Docker config and a credential helper, challenge parsing.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, Image, type PullProgress } from '../../src/index.js';
import { parseChallenges } from '../../src/image/registry/challenge.js';
import { dockerCredentials } from '../../src/image/registry/credentials.js';
import { isInsecure } from '../../src/image/registry/hosts.js';
import { normalizePlatform, selectPlatform, type ImageIndex } from '../../src/image/registry/manifest.js';
import { tempDir } from '../helpers/tmp.js';

const ORIGIN = 'https://reg.example';
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const engines: Engine[] = [];
afterEach(() => engines.splice(0).forEach((e) => e.close()));

async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function fixture(arch: string, text: string) {
  const raw = await layerTar({ 'hello.txt': text });
  const gz = gzipSync(raw);
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Cmd: ['/hello'] },
      rootfs: { type: 'layers', diff_ids: [sha(raw)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.byteLength }],
    }),
  );
  return { raw, gz, config, manifest };
}

function engineWith(agent: MockAgent): Engine {
  const root = tempDir('registry-pull');
  const e = new Engine({ root, runRoot: join(root, 'run'), registryDispatcher: agent, registryRetries: 0 });
  engines.push(e);
  return e;
}

describe('pull (MockAgent registry)', () => {
  it('chooses the platform from an index, unpacks the layer and records tag and repo digest', async () => {
    const amd = await fixture('amd64', 'amd64\n');
    const arm = await fixture('arm64', 'arm64\n');
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: sha(amd.manifest),
            size: amd.manifest.byteLength,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: sha(arm.manifest),
            size: arm.manifest.byteLength,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
        ],
      }),
    );
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(ORIGIN);
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    pool
      .intercept({ path: '/v2/app/manifests/1', method: 'GET' })
      .reply(200, index, { headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } });
    for (const f of [amd, arm]) {
      pool
        .intercept({ path: `/v2/app/manifests/${sha(f.manifest)}`, method: 'GET' })
        .reply(200, f.manifest, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
        .persist();
      pool
        .intercept({ path: `/v2/app/blobs/${sha(f.config)}`, method: 'GET' })
        .reply(200, f.config)
        .persist();
      pool
        .intercept({ path: `/v2/app/blobs/${sha(f.gz)}`, method: 'GET' })
        .reply(200, f.gz)
        .persist();
    }
    const engine = engineWith(agent);
    const op = new Image('reg.example/app:1', { engine }).pull({ platform: 'linux/arm64' });
    const events: PullProgress[] = [];
    for await (const p of op) events.push(p);
    const info = await (await op).inspect();
    expect(info.id).toBe(sha(arm.config));
    expect(info.architecture).toBe('arm64');
    expect(info.repoTags).toEqual(['reg.example/app:1']);
    expect(info.repoDigests).toEqual([`reg.example/app@${sha(index)}`]);
    const layerId = sha(arm.gz).slice(7, 19);
    expect(events.filter((e) => e.id === layerId).map((e) => e.status)).toEqual(
      expect.arrayContaining(['Pulling fs layer', 'Downloading', 'Download complete', 'Pull complete']),
    );
    const run = await engine.images.resolveForRun('reg.example/app:1');
    expect(existsSync(join(engine.images.layers.fsDir(run.layers[0] as string), 'hello.txt'))).toBe(true);

    pool
      .intercept({ path: '/v2/app/manifests/1', method: 'GET' })
      .reply(200, index, { headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } });
    await expect(new Image('reg.example/app:1', { engine }).pull({ platform: 'linux/s390x' })).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      message: expect.stringContaining('linux/amd64, linux/arm64/v8'),
    });
  });

  it('rejects a layer whose content does not match its digest, leaving no layer behind', async () => {
    const f = await fixture('amd64', 'good\n');
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(ORIGIN);
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    pool
      .intercept({ path: '/v2/app/manifests/1', method: 'GET' })
      .reply(200, f.manifest, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    pool.intercept({ path: `/v2/app/blobs/${sha(f.config)}`, method: 'GET' }).reply(200, f.config);
    const evil = gzipSync(await layerTar({ 'hello.txt': 'evil\n' }));
    pool.intercept({ path: `/v2/app/blobs/${sha(f.gz)}`, method: 'GET' }).reply(200, evil);
    const engine = engineWith(agent);
    await expect(new Image('reg.example/app:1', { engine }).pull({ platform: 'linux/amd64' })).rejects.toMatchObject({
      code: expect.stringMatching(/REGISTRY|INVALID_ARGUMENT/),
    });
    const dir = join(engine.root, 'layers', 'sha256');
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    expect(await new Image('reg.example/app:1', { engine }).exists()).toBe(false);
  });

  it.skipIf(!existsSync('/usr/bin/zstd'))(
    'pulls a zstd-compressed layer (decoded in JavaScript while it downloads)',
    async () => {
      const raw = await layerTar({ 'z.txt': 'zstd layer\n'.repeat(1000) });
      const zst = execFileSync('/usr/bin/zstd', ['-q', '-c'], { input: raw });
      const config = Buffer.from(
        JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(raw)] } }),
      );
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: sha(config),
            size: config.byteLength,
          },
          layers: [
            { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: sha(zst), size: zst.byteLength },
          ],
        }),
      );
      const agent = new MockAgent();
      agent.disableNetConnect();
      const pool = agent.get(ORIGIN);
      pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
      pool
        .intercept({ path: '/v2/z/manifests/1', method: 'GET' })
        .reply(200, manifest, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
      pool.intercept({ path: `/v2/z/blobs/${sha(config)}`, method: 'GET' }).reply(200, config);
      pool.intercept({ path: `/v2/z/blobs/${sha(zst)}`, method: 'GET' }).reply(200, zst);
      const engine = engineWith(agent);
      await new Image('reg.example/z:1', { engine }).pull();
      const run = await engine.images.resolveForRun('reg.example/z:1');
      expect(readFileSync(join(engine.images.layers.fsDir(run.layers[0] as string), 'z.txt'), 'utf8')).toBe(
        'zstd layer\n'.repeat(1000),
      );
    },
  );

  it('restarts a layer whose download broke', async () => {
    const f = await fixture('amd64', 'again\n');
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(ORIGIN);
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    pool
      .intercept({ path: '/v2/app/manifests/1', method: 'GET' })
      .reply(200, f.manifest, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    pool.intercept({ path: `/v2/app/blobs/${sha(f.config)}`, method: 'GET' }).reply(200, f.config);
    pool.intercept({ path: `/v2/app/blobs/${sha(f.gz)}`, method: 'GET' }).replyWithError(new Error('ECONNRESET'));
    pool.intercept({ path: `/v2/app/blobs/${sha(f.gz)}`, method: 'GET' }).reply(200, f.gz);
    const engine = engineWith(agent);
    const op = new Image('reg.example/app:1', { engine }).pull({ platform: 'linux/amd64' });
    await op;
    expect(op.events.map((e) => e.status)).toEqual(expect.arrayContaining(['Retrying in 1 second', 'Pull complete']));
  });

  it('validates options before any request', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const engine = engineWith(agent);
    await expect(new Image('reg.example/app:1', { engine }).pull({ platform: 'a/b/c/d' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'platform',
    });
    await expect(
      new Image('reg.example/app:1', { engine }).pull({ auth: { username: 'u' } as never }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'auth' });
    await expect(new Image('reg.example/app:1', { engine }).push({ nope: 1 } as never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'nope',
    });
    await expect(new Image('reg.example/app@sha256:' + 'a'.repeat(64), { engine }).push()).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'ref',
    });
    expect(() => new Engine({ insecureRegistries: 'x' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'insecureRegistries' }),
    );
    expect(() => new Engine({ maxConcurrentDownloads: 0 })).toThrow(
      expect.objectContaining({ field: 'maxConcurrentDownloads' }),
    );
  });
});

describe('registry helpers', () => {
  it('parses WWW-Authenticate challenges', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull',
        },
      },
    ]);
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
  });

  it('allows plain HTTP for loopback and listed registries only', () => {
    expect(isInsecure('localhost:5000')).toBe(true);
    expect(isInsecure('127.0.0.1:5000')).toBe(true);
    expect(isInsecure('[::1]:5000')).toBe(true);
    expect(isInsecure('reg.example')).toBe(false);
    expect(isInsecure('reg.example:5000', ['reg.example:5000'])).toBe(true);
    expect(isInsecure('10.2.3.4:5000', ['10.0.0.0/8'])).toBe(true);
    expect(isInsecure('11.2.3.4:5000', ['10.0.0.0/8'])).toBe(false);
  });

  it('chooses platforms as Docker does', () => {
    const d = (p: object, n: string) => ({ mediaType: 'm', digest: `sha256:${n.repeat(64)}`, size: 1, platform: p });
    const index = {
      schemaVersion: 2,
      manifests: [
        d({ os: 'linux', architecture: 'arm', variant: 'v6' }, 'a'),
        d({ os: 'linux', architecture: 'arm', variant: 'v7' }, 'b'),
        d({ os: 'linux', architecture: 'arm64' }, 'c'),
      ],
    } as unknown as ImageIndex;
    expect(selectPlatform(index, normalizePlatform('linux/arm/v7'), 'r', 'x').digest).toMatch(/^sha256:b/);
    expect(selectPlatform(index, normalizePlatform('linux/arm64/v8'), 'r', 'x').digest).toMatch(/^sha256:c/);
    expect(normalizePlatform({ architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' });
  });

  it('reads credentials from $DOCKER_CONFIG: auths, Docker Hub key, and credential helpers', async () => {
    const dir = tempDir('docker-config');
    const env = { DOCKER_CONFIG: dir, PATH: `${dir}:${process.env.PATH}` };
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'reg.example': { auth: Buffer.from('u:p:w').toString('base64') },
          'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') },
        },
        credHelpers: { 'helped.example': 'berthtest' },
      }),
    );
    expect(await dockerCredentials('reg.example', env)).toEqual({ username: 'u', password: 'p:w' });
    expect(await dockerCredentials('docker.io', env)).toEqual({ username: 'hub', password: 'pw' });
    expect(await dockerCredentials('none.example', env)).toBeUndefined();
    const helper = join(dir, 'docker-credential-berthtest');
    writeFileSync(
      helper,
      '#!/bin/sh\nread url\n[ "$1" = get ] && [ "$url" = helped.example ] && echo \'{"ServerURL":"helped.example","Username":"hu","Secret":"hs"}\'\n',
    );
    chmodSync(helper, 0o755);
    expect(await dockerCredentials('helped.example', env)).toEqual({ username: 'hu', password: 'hs' });
    expect(
      await dockerCredentials('x.example', { DOCKER_CONFIG: join(tmpdir(), 'berth-none-' + process.pid) }),
    ).toBeUndefined();
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', 'config.json'), '{');
    await expect(dockerCredentials('x', { DOCKER_CONFIG: join(dir, 'bad') })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
