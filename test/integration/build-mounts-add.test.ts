/**
 * `Image.build`'s `RUN --mount` kinds (cache, secret, tmpfs, bind from the context and from a
 * stage) and `ADD` (local archives unpacked, URLs from a server on 127.0.0.1 with `--checksum`).
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Image } from '../../src/index.js';
import { build, runImage } from '../helpers/build.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

describe('Image.build: RUN --mount', () => {
  it('keeps a cache mount between builds and out of the image, and empties it with noCache', async () => {
    const { engine } = await testEngine();
    const dockerfile = (n: number) =>
      [
        `FROM ${BUSYBOX_REF}`,
        `RUN --mount=type=cache,target=/cache echo run${n} >> /cache/log && cp /cache/log /seen`,
        'CMD cat /seen; test -e /cache/log && echo leaked || echo clean',
      ].join('\n');
    await build(engine, { context: { Dockerfile: dockerfile(1) } });
    const second = await build(engine, { context: { Dockerfile: dockerfile(2) } });
    const out = (await runImage(engine, second.id)).output.trim().split('\n');
    expect(out.slice(0, 2)).toEqual(['run1', 'run2']);
    expect(out.at(-1)).toBe('clean'); // the cache's content is not in the image
    const fresh = await build(engine, { context: { Dockerfile: dockerfile(3) }, noCache: true });
    expect((await runImage(engine, fresh.id)).output.trim().split('\n')[0]).toBe('run3');
  });

  it('gives a secret to its step as a file and an environment variable, never to the image or its history', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      `FROM ${BUSYBOX_REF}`,
      'RUN --mount=type=secret,id=token,env=TOKEN,target=/run/secrets/token cat /run/secrets/token > /copy; echo "$TOKEN" >> /copy',
      'RUN --mount=type=secret,id=token,env=ONLY_ENV test ! -e /run/secrets/token && echo "$ONLY_ENV" >> /copy',
      'CMD cat /copy; test -e /run/secrets/token && echo leaked || echo clean',
    ].join('\n');
    const { id, image } = await build(engine, {
      context: { Dockerfile: dockerfile },
      secrets: { token: Buffer.from('s3cret') },
    });
    const out = (await runImage(engine, id)).output;
    expect(out).toMatch(/^s3crets3cret\ns3cret\n/);
    expect(out.trim().split('\n').at(-1)).toBe('clean');
    const history = JSON.stringify((await image.inspect()).history);
    expect(history).not.toMatch(/s3cret/);
    await expect(
      Image.build({
        engine,
        context: {
          Dockerfile: `FROM ${BUSYBOX_REF}\nRUN --mount=type=secret,id=absent,required cat /run/secrets/absent`,
        },
      }),
    ).rejects.toMatchObject({ code: 'BUILD_FAILED', line: 2 });
  });

  it('mounts a tmpfs, the context read-only and a stage, none of them left in the layer', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      `FROM ${BUSYBOX_REF} AS tools`,
      'RUN mkdir /tools && echo tool > /tools/t',
      `FROM ${BUSYBOX_REF}`,
      'RUN --mount=type=tmpfs,target=/scratch --mount=type=bind,target=/ctx --mount=type=bind,from=tools,source=/tools,target=/t ' +
        'echo x > /scratch/x && cat /ctx/input.txt /t/t > /out && (touch /ctx/w 2>/dev/null && echo writable || echo readonly) >> /out',
      'CMD cat /out; ls -d /scratch /ctx /t 2>&1 | grep -c "No such"',
    ].join('\n');
    const { id } = await build(engine, { context: { Dockerfile: dockerfile, 'input.txt': 'input\n' } });
    const out = (await runImage(engine, id)).output.trim().split('\n');
    expect(out).toEqual(['input', 'tool', 'readonly', '3']);
  });
});

describe('Image.build: read-write binds', () => {
  it('lets a step write to a read-write bind of the context, and drops those writes from the context and the image', async () => {
    const { engine } = await testEngine();
    const ctx = tempDir('ctx');
    fs.writeFileSync(join(ctx, 'input.txt'), 'input\n');
    fs.writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${BUSYBOX_REF}`,
        'RUN --mount=type=bind,target=/ctx,rw echo changed > /ctx/input.txt && echo new > /ctx/new.txt && cat /ctx/input.txt > /seen',
        'CMD cat /seen; ls /ctx 2>&1 | grep -c input',
      ].join('\n'),
    );
    const { id } = await build(engine, { context: ctx });
    expect((await runImage(engine, id)).output).toBe('changed\n0\n');
    expect(fs.readFileSync(join(ctx, 'input.txt'), 'utf8')).toBe('input\n');
    expect(fs.existsSync(join(ctx, 'new.txt'))).toBe(false);
  });
});

describe('Image.build: ADD', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
    server = undefined;
  });

  it('unpacks a local gzip tar into the destination and copies a plain file as is', async () => {
    const { engine } = await testEngine();
    const ctx = tempDir('ctx');
    const src = tempDir('tarsrc');
    fs.mkdirSync(join(src, 'pkg'));
    fs.writeFileSync(join(src, 'pkg/inside.txt'), 'inside\n');
    expect(spawnSync('tar', ['-C', src, '-czf', join(ctx, 'bundle.tgz'), 'pkg']).status).toBe(0);
    fs.writeFileSync(join(ctx, 'plain.txt'), 'plain\n');
    fs.writeFileSync(
      join(ctx, 'Dockerfile'),
      `FROM ${BUSYBOX_REF}\nADD bundle.tgz /opt/\nADD plain.txt /opt/\nCMD cat /opt/pkg/inside.txt /opt/plain.txt`,
    );
    const { id } = await build(engine, { context: ctx });
    expect((await runImage(engine, id)).output).toBe('inside\nplain\n');
  });

  it('downloads a URL (mode 600, not unpacked) and refuses a checksum mismatch', async () => {
    const { engine } = await testEngine();
    const body = 'downloaded\n';
    server = createServer((_req, res) => {
      res.setHeader('Last-Modified', 'Wed, 21 Oct 2015 07:28:00 GMT');
      res.end(body);
    });
    await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', () => ok()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/thing.txt`;
    const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const { id } = await build(engine, {
      context: {
        Dockerfile: `FROM ${BUSYBOX_REF}\nADD --checksum=${sum} ${url} /dl/\nCMD stat -c %a /dl/thing.txt; cat /dl/thing.txt`,
      },
    });
    expect((await runImage(engine, id)).output).toBe('600\ndownloaded\n');
    const wrong = `sha256:${'0'.repeat(64)}`;
    await expect(
      Image.build({ engine, context: { Dockerfile: `FROM ${BUSYBOX_REF}\nADD --checksum=${wrong} ${url} /dl/` } }),
    ).rejects.toMatchObject({ code: 'BUILD_FAILED', line: 2 });
  });
});
