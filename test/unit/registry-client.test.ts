/**
 * The registry client against undici's MockAgent: auth flows, token reuse, retries, redirects,
 * digest checks and the typed errors.
 */
import { createHash } from 'node:crypto';
import { MockAgent } from 'undici';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/errors.js';
import { RegistryClient } from '../../src/image/registry/client.js';
import { RegistryHub } from '../../src/image/registry/hub.js';
import { MANIFEST_ACCEPT } from '../../src/image/registry/manifest.js';

const ORIGIN = 'https://reg.example';
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function setup(options: { retries?: number } = {}) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const hub = new RegistryHub({
    registryDispatcher: agent,
    registryRetries: options.retries ?? 3,
    registryRetryDelay: 1,
  });
  return { agent, hub, pool: agent.get(ORIGIN) };
}

const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'x', digest: sha('c'), size: 1 },
    layers: [],
  }),
);

describe('RegistryClient', () => {
  it('follows an anonymous Bearer challenge and reuses the token until it expires', async () => {
    const { agent, hub, pool } = setup();
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(401, '', {
      headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg.example"' },
    });
    let tokenCalls = 0;
    agent
      .get('https://auth.example')
      .intercept({ path: (p) => p.startsWith('/token?'), method: 'GET' })
      .reply((opts) => {
        tokenCalls++;
        const url = new URL(opts.path, 'https://auth.example');
        expect(url.searchParams.get('service')).toBe('reg.example');
        expect(url.searchParams.getAll('scope')).toEqual(['repository:library/alpine:pull']);
        expect((opts.headers as Record<string, string>).authorization).toBeUndefined();
        return { statusCode: 200, data: JSON.stringify({ token: 'T1', expires_in: 300 }) };
      })
      .persist();
    pool
      .intercept({ path: '/v2/library/alpine/manifests/3.20', method: 'GET', headers: { authorization: 'Bearer T1' } })
      .reply(200, manifest, {
        headers: {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': sha(manifest),
        },
      })
      .times(2);
    const client = new RegistryClient('reg.example', hub);
    const m = await client.getManifest('library/alpine', '3.20', MANIFEST_ACCEPT);
    expect(m.digest).toBe(sha(manifest));
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    await client.getManifest('library/alpine', '3.20', MANIFEST_ACCEPT);
    expect(tokenCalls).toBe(1);
    // A new client (another operation) with the same credentials reuses it too.
    pool
      .intercept({ path: '/v2/library/alpine/manifests/3.20', method: 'GET', headers: { authorization: 'Bearer T1' } })
      .reply(200, manifest);
    await new RegistryClient('reg.example', hub).getManifest('library/alpine', '3.20', MANIFEST_ACCEPT);
    expect(tokenCalls).toBe(1);
  });

  it('sends credentials to the token service, and a refresh token as an OAuth POST', async () => {
    const { agent, hub, pool } = setup();
    pool
      .intercept({ path: '/v2/', method: 'GET' })
      .reply(401, '', { headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="svc"' } });
    const auth = agent.get('https://auth.example');
    auth
      .intercept({
        path: (p) => p.startsWith('/token?'),
        method: 'GET',
        headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` },
      })
      .reply(200, JSON.stringify({ access_token: 'TU' }));
    pool
      .intercept({ path: '/v2/a/b/blobs/' + sha('x'), method: 'HEAD', headers: { authorization: 'Bearer TU' } })
      .reply(200, '', { headers: { 'content-length': '1' } });
    expect(
      await new RegistryClient('reg.example', hub, { username: 'u', password: 'p' }).hasBlob('a/b', sha('x')),
    ).toBe(1);

    auth
      .intercept({
        path: '/token',
        method: 'POST',
        body: (b) =>
          new URLSearchParams(String(b)).get('refresh_token') === 'RT' &&
          new URLSearchParams(String(b)).get('grant_type') === 'refresh_token',
      })
      .reply(200, JSON.stringify({ access_token: 'TR' }));
    pool
      .intercept({ path: '/v2/a/b/blobs/' + sha('x'), method: 'HEAD', headers: { authorization: 'Bearer TR' } })
      .reply(404, '');
    expect(
      await new RegistryClient('reg.example', hub, { identitytoken: 'RT' }).hasBlob('a/b', sha('x')),
    ).toBeUndefined();
  });

  it('uses Basic auth when the registry asks for it, and a registry token as is', async () => {
    const { hub, pool } = setup();
    pool
      .intercept({ path: '/v2/', method: 'GET' })
      .reply(401, '', { headers: { 'www-authenticate': 'Basic realm="r"' } });
    pool
      .intercept({
        path: '/v2/a/manifests/1',
        method: 'GET',
        headers: { authorization: `Basic ${Buffer.from('u:p:x').toString('base64')}` },
      })
      .reply(200, manifest);
    await new RegistryClient('reg.example', hub, { username: 'u', password: 'p:x' }).getManifest(
      'a',
      '1',
      MANIFEST_ACCEPT,
    );

    const other = setup();
    other.pool
      .intercept({ path: '/v2/', method: 'GET' })
      .reply(401, '', { headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token"' } });
    other.pool
      .intercept({ path: '/v2/a/manifests/1', method: 'GET', headers: { authorization: 'Bearer RAW' } })
      .reply(200, manifest);
    await new RegistryClient('reg.example', other.hub, { registrytoken: 'RAW' }).getManifest('a', '1', MANIFEST_ACCEPT);
  });

  it('retries 5xx, 429 and dropped connections, then gives up with REGISTRY_UNREACHABLE', async () => {
    const { hub, pool } = setup();
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    pool.intercept({ path: '/v2/a/manifests/1', method: 'GET' }).reply(503, 'busy');
    pool.intercept({ path: '/v2/a/manifests/1', method: 'GET' }).reply(429, '', { headers: { 'retry-after': '0' } });
    pool.intercept({ path: '/v2/a/manifests/1', method: 'GET' }).replyWithError(new Error('socket hang up'));
    pool.intercept({ path: '/v2/a/manifests/1', method: 'GET' }).reply(200, manifest);
    const client = new RegistryClient('reg.example', hub);
    expect((await client.getManifest('a', '1', MANIFEST_ACCEPT)).digest).toBe(sha(manifest));

    pool.intercept({ path: '/v2/a/manifests/2', method: 'GET' }).reply(502, 'bad gateway').times(4);
    await expect(client.getManifest('a', '2', MANIFEST_ACCEPT)).rejects.toMatchObject({
      code: 'REGISTRY_UNREACHABLE',
      status: 502,
    });
    pool.intercept({ path: '/v2/a/manifests/3', method: 'GET' }).replyWithError(new Error('ECONNRESET')).times(4);
    const e = await client.getManifest('a', '3', MANIFEST_ACCEPT).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistryError);
    expect(e).toMatchObject({ code: 'REGISTRY_UNREACHABLE', registry: 'reg.example' });
  });

  it('follows blob redirects without sending credentials to the other host', async () => {
    const { agent, hub, pool } = setup();
    const blob = Buffer.from('layer bytes');
    pool
      .intercept({ path: '/v2/', method: 'GET' })
      .reply(401, '', { headers: { 'www-authenticate': 'Basic realm="r"' } });
    pool
      .intercept({ path: `/v2/a/blobs/${sha(blob)}`, method: 'GET' })
      .reply(307, '', { headers: { location: 'https://cdn.example/blob?sig=1' } });
    agent
      .get('https://cdn.example')
      .intercept({ path: '/blob?sig=1', method: 'GET' })
      .reply((opts) => {
        expect((opts.headers as Record<string, string>).authorization).toBeUndefined();
        return { statusCode: 200, data: blob };
      });
    const client = new RegistryClient('reg.example', hub, { username: 'u', password: 'p' });
    expect(await client.fetchBlob('a', sha(blob), { expectedSize: blob.byteLength })).toEqual(blob);
  });

  it('rejects content whose digest does not match', async () => {
    const { hub, pool } = setup();
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    pool.intercept({ path: `/v2/a/manifests/${sha('other')}`, method: 'GET' }).reply(200, manifest);
    const client = new RegistryClient('reg.example', hub);
    await expect(client.getManifest('a', sha('other'), MANIFEST_ACCEPT)).rejects.toMatchObject({
      code: 'REGISTRY',
      registryCode: 'DIGEST_INVALID',
    });
    pool
      .intercept({ path: '/v2/a/manifests/t', method: 'GET' })
      .reply(200, manifest, { headers: { 'docker-content-digest': sha('other') } });
    await expect(client.getManifest('a', 't', MANIFEST_ACCEPT)).rejects.toMatchObject({
      registryCode: 'DIGEST_INVALID',
    });
    pool.intercept({ path: `/v2/a/blobs/${sha('good')}`, method: 'GET' }).reply(200, 'evil');
    await expect(client.fetchBlob('a', sha('good'))).rejects.toMatchObject({ registryCode: 'DIGEST_INVALID' });
    pool.intercept({ path: `/v2/a/blobs/${sha('good')}`, method: 'GET' }).reply(200, 'good and more');
    await expect(client.fetchBlob('a', sha('good'), { expectedSize: 4 })).rejects.toMatchObject({
      registryCode: 'SIZE_INVALID',
    });
  });

  it('maps 401/403 to REGISTRY_AUTH and 404 to IMAGE_NOT_FOUND, with the spec error code', async () => {
    const { hub, pool } = setup();
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    pool
      .intercept({ path: '/v2/a/manifests/1', method: 'GET' })
      .reply(404, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    pool
      .intercept({ path: '/v2/a/manifests/2', method: 'GET' })
      .reply(
        403,
        JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }),
      );
    pool
      .intercept({ path: '/v2/a/manifests/3', method: 'GET' })
      .reply(401, JSON.stringify({ errors: [{ code: 'UNAUTHORIZED' }] }));
    const client = new RegistryClient('reg.example', hub);
    await expect(client.getManifest('a', '1', MANIFEST_ACCEPT)).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      status: 404,
      registryCode: 'MANIFEST_UNKNOWN',
    });
    await expect(client.getManifest('a', '2', MANIFEST_ACCEPT)).rejects.toMatchObject({
      code: 'REGISTRY_AUTH',
      status: 403,
      registryCode: 'DENIED',
    });
    await expect(client.getManifest('a', '3', MANIFEST_ACCEPT)).rejects.toMatchObject({
      code: 'REGISTRY_AUTH',
      status: 401,
      registryCode: 'UNAUTHORIZED',
    });
  });

  it('uploads monolithically, in chunks, and mounts across repositories', async () => {
    const { hub, pool } = setup();
    pool.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    const client = new RegistryClient('reg.example', hub);
    // Monolithic.
    const cfg = Buffer.from('{"config":1}');
    pool
      .intercept({ path: '/v2/a/blobs/uploads/', method: 'POST' })
      .reply(202, '', { headers: { location: '/v2/a/blobs/uploads/u1?state=s' } });
    pool
      .intercept({
        path: (p) => {
          const u = new URL(p, ORIGIN);
          return (
            u.pathname === '/v2/a/blobs/uploads/u1' &&
            u.searchParams.get('state') === 's' &&
            u.searchParams.get('digest') === sha(cfg)
          );
        },
        method: 'PUT',
        body: (b) => Buffer.from(b as unknown as Uint8Array).equals(cfg),
      })
      .reply(201, '');
    await client.uploadMonolithic('a', sha(cfg), cfg);
    // Chunked: 10 bytes in chunks of 4.
    const data = Buffer.from('0123456789');
    const ranges: string[] = [];
    pool
      .intercept({ path: '/v2/a/blobs/uploads/', method: 'POST' })
      .reply(202, '', { headers: { location: 'https://reg.example/v2/a/blobs/uploads/u2' } });
    pool
      .intercept({ path: (p) => p.startsWith('/v2/a/blobs/uploads/u2'), method: 'PATCH' })
      .reply((o) => {
        ranges.push(String((o.headers as Record<string, string>)['content-range']));
        return {
          statusCode: 202,
          data: '',
          responseOptions: { headers: { location: `/v2/a/blobs/uploads/u2?n=${ranges.length}` } },
        };
      })
      .times(2);
    pool
      .intercept({
        path: (p) => {
          const u = new URL(p, ORIGIN);
          return (
            u.pathname === '/v2/a/blobs/uploads/u2' &&
            u.searchParams.get('n') === '2' &&
            u.searchParams.get('digest') === sha(data)
          );
        },
        method: 'PUT',
      })
      .reply(201, '');
    const up = await client.uploadChunked('a', [data.subarray(0, 3), data.subarray(3, 9), data.subarray(9)], {
      chunkSize: 4,
    });
    expect(up).toEqual({ digest: sha(data), size: 10 });
    expect(ranges).toEqual(['0-8', '9-9']);
    // Mount.
    pool
      .intercept({
        path: (p) => {
          const u = new URL(p, ORIGIN);
          return (
            u.pathname === '/v2/b/blobs/uploads/' &&
            u.searchParams.get('mount') === sha(data) &&
            u.searchParams.get('from') === 'a'
          );
        },
        method: 'POST',
      })
      .reply(201, '');
    expect(await client.startUpload('b', { digest: sha(data), from: 'a' })).toEqual({ mounted: true });
  });

  it('falls back to plain HTTP only for insecure or loopback registries', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const hub = new RegistryHub({ registryDispatcher: agent, registryRetries: 0, insecureRegistries: ['10.0.0.0/8'] });
    agent
      .get('https://10.1.2.3:5000')
      .intercept({ path: '/v2/', method: 'GET' })
      .replyWithError(new Error('wrong version number'));
    agent.get('http://10.1.2.3:5000').intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    expect((await new RegistryClient('10.1.2.3:5000', hub).ping()).base).toBe('http://10.1.2.3:5000');
    agent
      .get('https://secure.example')
      .intercept({ path: '/v2/', method: 'GET' })
      .replyWithError(new Error('wrong version number'));
    await expect(new RegistryClient('secure.example', hub).ping()).rejects.toMatchObject({
      code: 'REGISTRY_UNREACHABLE',
    });
  });
});
