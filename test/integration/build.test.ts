/**
 * `Image.build` on a real engine root from the busybox test image: what each instruction puts in
 * the image (config, history and files), RUN in the default sandbox, COPY from the context with
 * its rules, heredocs, ONBUILD and `image.run()`.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Image } from '../../src/index.js';
import { build, runImage } from '../helpers/build.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

describe('Image.build: instructions', () => {
  it('writes the config, history and files docker build writes for RUN, ENV, ARG, WORKDIR, LABEL, EXPOSE, VOLUME, STOPSIGNAL, ENTRYPOINT, CMD and HEALTHCHECK', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      `FROM ${BUSYBOX_REF}`,
      'ENV A=one',
      'ENV A=two B=$A',
      'ARG V=x',
      'LABEL l="a b" m=${V}',
      'WORKDIR app',
      'WORKDIR sub',
      'RUN echo "$A $B $V" > out.txt',
      'EXPOSE 80 8000-8001/udp',
      'VOLUME /data',
      'STOPSIGNAL SIGINT',
      'ENTRYPOINT ["cat"]',
      'CMD ["out.txt"]',
      'HEALTHCHECK --interval=5s --retries=2 CMD true',
    ].join('\n');
    const { image } = await build(engine, { context: { Dockerfile: dockerfile }, tag: 'built:1' });
    expect(image.ref).toBe('built:1');
    const info = await image.inspect();
    expect(info.repoTags).toEqual(['built:1']);
    expect(info.config.env).toContain('A=two');
    expect(info.config.env).toContain('B=one');
    expect(info.config.env.some((e) => e.startsWith('V='))).toBe(false);
    expect(info.config.workdir).toBe('/app/sub');
    expect(info.config.labels).toEqual({ l: 'a b', m: 'x' });
    expect(info.config.exposedPorts.sort()).toEqual(['80/tcp', '8000/udp', '8001/udp']);
    expect(info.config.volumes).toEqual(['/data']);
    expect(info.config.stopSignal).toBe('SIGINT');
    expect(info.config.entrypoint).toEqual(['cat']);
    expect(info.config.cmd).toEqual(['out.txt']);
    expect(info.config.healthcheck).toEqual({ test: ['CMD-SHELL', 'true'], interval: 5000, retries: 2 });
    // One layer for each WORKDIR that made a directory and for the RUN; the rest are empty.
    const own = info.history.slice(-13);
    expect(own.map((h) => h.emptyLayer)).toEqual([
      true, // ENV
      true, // ENV
      true, // ARG
      true, // LABEL
      false, // WORKDIR app
      false, // WORKDIR sub
      false, // RUN
      true, // EXPOSE
      true, // VOLUME
      true, // STOPSIGNAL
      true, // ENTRYPOINT
      true, // CMD
      true, // HEALTHCHECK
    ]);
    expect(own[6]!.createdBy).toBe('RUN |1 V=x /bin/sh -c echo "$A $B $V" > out.txt # buildkit');
    expect(info.layers).toHaveLength(1 + 3);
    expect(await runImage(engine, 'built:1')).toEqual({ exitCode: 0, output: 'two one x\n' });
  });

  it('resets an inherited CMD on ENTRYPOINT but keeps a CMD of the same stage', async () => {
    const { engine } = await testEngine();
    await build(engine, { context: { Dockerfile: `FROM ${BUSYBOX_REF}\nCMD ["echo", "base"]` }, tag: 'base:1' });
    const reset = await build(engine, { context: { Dockerfile: 'FROM base:1\nENTRYPOINT ["echo", "e"]' } });
    expect((await reset.image.inspect()).config.cmd).toBeNull();
    const kept = await build(engine, {
      context: { Dockerfile: 'FROM base:1\nCMD ["x"]\nENTRYPOINT ["echo", "e"]' },
    });
    expect((await kept.image.inspect()).config.cmd).toEqual(['x']);
    expect((await runImage(engine, kept.id)).output).toBe('e x\n');
  });

  it('runs RUN as the USER in the WORKDIR, with no network and the shell of SHELL', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      `FROM ${BUSYBOX_REF}`,
      "RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group",
      'USER app',
      'WORKDIR /home/app/work',
      'RUN id -u > /tmp/uid; pwd > /tmp/pwd; ls /sys/class/net > /tmp/net; stat -c %u:%g /home/app/work > /tmp/owner',
      'SHELL ["/bin/sh", "-ec"]',
      'RUN echo "$0 $-" > /tmp/shell',
      'USER root',
      'CMD cat /tmp/uid /tmp/pwd /tmp/net /tmp/owner /tmp/shell',
    ].join('\n');
    const { id } = await build(engine, { context: { Dockerfile: dockerfile } });
    const { output } = await runImage(engine, id);
    const [uid, pwd, net, owner, shell] = output.trim().split('\n');
    expect(uid).toBe('1000');
    expect(pwd).toBe('/home/app/work');
    expect(net).toBe('lo');
    expect(owner).toBe('1000:1000');
    expect(shell).toMatch(/^\/bin\/sh .*e/);
  });

  it('copies files and directories of the context with .dockerignore, --chown, --chmod and the trailing-slash rules', async () => {
    const { engine } = await testEngine();
    const ctx = tempDir('ctx');
    fs.mkdirSync(join(ctx, 'src/deep'), { recursive: true });
    fs.writeFileSync(join(ctx, 'src/a.txt'), 'a');
    fs.writeFileSync(join(ctx, 'src/deep/b.txt'), 'b');
    fs.writeFileSync(join(ctx, 'src/secret.key'), 'k');
    fs.writeFileSync(join(ctx, 'one.txt'), '1');
    fs.symlinkSync('a.txt', join(ctx, 'src/link'));
    fs.writeFileSync(join(ctx, '.dockerignore'), '**/*.key\n');
    fs.writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${BUSYBOX_REF}`,
        'COPY src /app/',
        'COPY --chown=7:8 --chmod=640 one.txt /opt/renamed',
        'COPY one.txt src/a.txt /multi/',
        'CMD ls -ln /app /app/deep /opt/renamed /multi; readlink /app/link',
      ].join('\n'),
    );
    const { id } = await build(engine, { context: ctx });
    const { output } = await runImage(engine, id);
    expect(output).toMatch(/a\.txt/);
    expect(output).toMatch(/b\.txt/);
    expect(output).not.toMatch(/secret\.key/);
    expect(output).toMatch(/-rw-r-----\s+1 7\s+8\s+1 .* \/opt\/renamed/);
    expect(output).toMatch(/one\.txt/);
    expect(output.trim().split('\n').at(-1)).toBe('a.txt');
  });

  it('runs heredocs in RUN and writes them with COPY', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      `FROM ${BUSYBOX_REF}`,
      'ENV WHO=world',
      'RUN <<EOF',
      'echo "hello $WHO" > /run.txt',
      'EOF',
      'COPY <<-EOT /copied.txt',
      '\thi ${WHO}',
      '\tEOT',
      'RUN <<EOF',
      '#!/bin/sh',
      'echo "script $0" > /script.txt',
      'EOF',
      'CMD cat /run.txt /copied.txt /script.txt',
    ].join('\n');
    const { id } = await build(engine, { context: { Dockerfile: dockerfile } });
    const { output } = await runImage(engine, id);
    const [run, copied, script] = output.trim().split('\n');
    expect(run).toBe('hello world');
    expect(copied).toBe('hi world');
    expect(script).toMatch(/^script \//);
  });

  it('runs the ONBUILD triggers of a base image first, and the result carries none', async () => {
    const { engine } = await testEngine();
    await build(engine, {
      context: { Dockerfile: `FROM ${BUSYBOX_REF}\nONBUILD RUN echo triggered > /onbuild.txt` },
      tag: 'with-trigger:1',
    });
    const { id } = await build(engine, { context: { Dockerfile: 'FROM with-trigger:1\nCMD cat /onbuild.txt' } });
    expect((await runImage(engine, id)).output).toBe('triggered\n');
    // The trigger ran in this build only: a build on the result runs none.
    const again = await build(engine, { context: { Dockerfile: `FROM ${id}\nRUN test ! -e /twice && touch /twice` } });
    expect(again.steps).toEqual(['RUN:done']);
  });

  it("adds the labels option over the Dockerfile's, and gives RUN the host's network only when asked", async () => {
    const { engine } = await testEngine();
    const dockerfile = `FROM ${BUSYBOX_REF}\nLABEL a=dockerfile b=kept\nRUN ls /sys/class/net | wc -l > /n\nCMD cat /n`;
    const none = await build(engine, { context: { Dockerfile: dockerfile }, labels: { a: 'option' } });
    expect((await none.image.inspect()).config.labels).toEqual({ a: 'option', b: 'kept' });
    expect((await runImage(engine, none.id)).output).toBe('1\n');
    const host = await build(engine, { context: { Dockerfile: dockerfile }, network: 'host' });
    expect(Number((await runImage(engine, host.id)).output)).toBeGreaterThan(1);
    expect(host.steps).toContain('RUN:done'); // the network is part of the step's key
  });

  it('runs an image through image.run()', async () => {
    const { engine } = await testEngine();
    const { image } = await build(engine, {
      context: { Dockerfile: `FROM ${BUSYBOX_REF}\nCMD ["echo", "from image.run"]` },
    });
    await using c = await new Image(image.ref, { engine }).run();
    expect((await c.wait()).exitCode).toBe(0);
    expect(await c.logs()).toBe('from image.run\n');
  });
});
