/**
 * `RUN --mount=type=secret`: the secret as a file owned by the mount's uid/gid with its mode, in a
 * private directory, or as an environment variable; missing secrets as BuildKit treats them.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { parseRunMount, type SecretMount } from '../../src/image/build/sources/run-mount.js';
import { prepareSecret } from '../../src/image/build/sources/secrets.js';
import { tempDir } from '../helpers/tmp.js';

const secret = (spec: string): SecretMount => parseRunMount(spec) as SecretMount;

describe('prepareSecret', () => {
  it('writes a Buffer secret to a 0400 root-owned file in a private directory, removed by cleanup', async () => {
    const tmp = tempDir('build-secret');
    const s = await prepareSecret(secret('type=secret,id=npm'), { npm: Buffer.from('token=1') }, tmp);
    const file = s?.file as string;
    expect(fs.readFileSync(file, 'utf8')).toBe('token=1');
    const st = fs.statSync(file);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([0, 0, 0o400]);
    expect(fs.statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    expect(s?.env).toBeUndefined();
    await s?.cleanup();
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it("reads a secret given as a host path, owned by the mount's uid/gid with its mode", async () => {
    const tmp = tempDir('build-secret');
    fs.writeFileSync(join(tmp, 'aws.txt'), 'key');
    const s = await prepareSecret(
      secret('type=secret,id=aws,target=/root/.aws/credentials,uid=1000,gid=1000,mode=0440'),
      { aws: join(tmp, 'aws.txt') },
      tmp,
    );
    const st = fs.statSync(s?.file as string);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1000, 1000, 0o440]);
    expect(fs.readFileSync(s?.file as string, 'utf8')).toBe('key');
    await s?.cleanup();
  });

  it('gives an env secret as a variable only, or as both when a target is named too', async () => {
    const tmp = tempDir('build-secret');
    const onlyEnv = await prepareSecret(secret('type=secret,id=t,env=TOKEN'), { t: Buffer.from('abc') }, tmp);
    expect(onlyEnv).toMatchObject({ env: { name: 'TOKEN', value: 'abc' } });
    expect(onlyEnv?.file).toBeUndefined();
    expect(fs.readdirSync(tmp)).toEqual([]);
    const both = await prepareSecret(secret('type=secret,id=t,env=TOKEN,target=/t'), { t: Buffer.from('abc') }, tmp);
    expect(both?.env).toEqual({ name: 'TOKEN', value: 'abc' });
    expect(fs.readFileSync(both?.file as string, 'utf8')).toBe('abc');
    await both?.cleanup();
  });

  it('a missing required secret is an InvalidArgumentError naming it; a missing optional one gives nothing', async () => {
    const tmp = tempDir('build-secret');
    const err = await prepareSecret(secret('type=secret,id=gh,required'), {}, tmp).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ field: 'secrets.gh' });
    expect(await prepareSecret(secret('type=secret,id=gh'), { other: Buffer.from('x') }, tmp)).toBeUndefined();
    expect(await prepareSecret(secret('type=secret,id=gh,env=GH'), {}, tmp)).toMatchObject({
      env: { name: 'GH', value: '' },
    });
    const unreadable = prepareSecret(secret('type=secret,id=gh'), { gh: join(tmp, 'nope') }, tmp);
    await expect(unreadable).rejects.toMatchObject({ field: 'secrets.gh' });
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
