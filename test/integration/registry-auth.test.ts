/**
 * Auth against the real registry on 127.0.0.1: htpasswd (Basic) and token auth with a token
 * service run by the test (RS256 JWTs signed by a self-signed certificate the registry trusts).
 * Credentials come from the `auth` option or from a Docker config (`DOCKER_CONFIG`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, Image } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { hasRegistry, startRegistry, startTokenService } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';

const user = { username: 'berth', password: 'pass word:1' };

describe.skipIf(!hasRegistry())('registry auth', () => {
  it('htpasswd: refuses anonymous and wrong credentials, pushes and pulls with the right ones', async () => {
    await using reg = await startRegistry({ htpasswd: user });
    const { engine } = await testEngine();
    const ref = `${reg.host}/secure/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    await expect(new Image(ref, { engine }).push()).rejects.toMatchObject({ code: 'REGISTRY_AUTH', status: 401 });
    await expect(
      new Image(ref, { engine }).push({ auth: { username: 'berth', password: 'wrong' } }),
    ).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
    await new Image(ref, { engine }).push({ auth: user });

    const fresh = await testEngine({ image: false });
    await expect(new Image(ref, { engine: fresh.engine }).pull()).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
    await new Image(ref, { engine: fresh.engine }).pull({ auth: user });
    const c = await Container.run(ref, ['echo', 'hi'], { engine: fresh.engine });
    await c.wait();
    expect(await c.logs()).toBe('hi\n');
  });

  it('htpasswd: takes the credentials from $DOCKER_CONFIG/config.json', async () => {
    await using reg = await startRegistry({ htpasswd: user });
    const { engine } = await testEngine();
    const ref = `${reg.host}/cfg/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    const dir = tempDir('docker-config');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: { [reg.host]: { auth: Buffer.from(`${user.username}:${user.password}`).toString('base64') } },
      }),
    );
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = dir;
    try {
      await new Image(ref, { engine }).push();
      const fresh = await testEngine({ image: false });
      await new Image(ref, { engine: fresh.engine }).pull();
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
    }
  });

  it('token auth: anonymous is refused, credentials get scoped tokens that are reused', async () => {
    await using tokens = await startTokenService({ users: { [user.username]: user.password } });
    await using reg = await startRegistry({
      token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certPem },
    });
    const { engine } = await testEngine();
    const ref = `${reg.host}/tok/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    await expect(new Image(ref, { engine }).push()).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
    await expect(
      new Image(ref, { engine }).push({ auth: { username: user.username, password: 'nope' } }),
    ).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
    tokens.requests.length = 0;
    await new Image(ref, { engine }).push({ auth: user });
    const pushScopes = tokens.requests.filter((r) => r.user === user.username).map((r) => r.scopes.join(' '));
    expect(pushScopes).toContain('repository:tok/busybox:pull,push');
    // One token per scope set for the whole push, not one per request.
    expect(new Set(pushScopes).size).toBe(pushScopes.length);

    const fresh = await testEngine({ image: false });
    tokens.requests.length = 0;
    await new Image(ref, { engine: fresh.engine }).pull({ auth: user });
    expect(tokens.requests.map((r) => r.scopes.join(' '))).toEqual(['repository:tok/busybox:pull']);
    const c = await Container.run(ref, ['echo', 'hi'], { engine: fresh.engine });
    await c.wait();
    expect(await c.logs()).toBe('hi\n');
  });

  it('token auth: anonymous pull when the token service allows it', async () => {
    await using tokens = await startTokenService({ users: { [user.username]: user.password }, anonymous: ['pull'] });
    await using reg = await startRegistry({
      token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certPem },
    });
    const { engine } = await testEngine();
    const ref = `${reg.host}/public/busybox:1`;
    await new Image(BUSYBOX_REF, { engine }).tag(ref);
    await new Image(ref, { engine }).push({ auth: user });
    const fresh = await testEngine({ image: false });
    await new Image(ref, { engine: fresh.engine }).pull();
    expect(tokens.requests.at(-1)).toEqual({ scopes: ['repository:public/busybox:pull'], user: undefined });
  });
});
