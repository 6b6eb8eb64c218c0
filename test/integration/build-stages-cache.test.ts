/**
 * `Image.build` across stages and builds: multi-stage builds (`COPY --from`, `target`, stages the
 * target does not need), the build cache (a fully cached rebuild gives the same image id; a
 * changed file reruns only what follows it; `noCache`), the three kinds of context, and failures
 * (typed, nothing tagged, nothing left).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BuildError, Image, InvalidArgumentError } from '../../src/index.js';
import { build, runImage } from '../helpers/build.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';
import { hasRegistry, startRegistry } from '../helpers/registry.js';

const REPO = resolve(import.meta.dirname, '../..');

describe('Image.build: stages', () => {
  it('copies from an earlier stage by name and by index and from an image, and never builds a stage the target does not need', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      `FROM ${BUSYBOX_REF} AS broken`,
      'RUN exit 7',
      `FROM ${BUSYBOX_REF} AS Maker`,
      'RUN echo made > /made.txt',
      `FROM ${BUSYBOX_REF}`,
      'RUN echo second > /second.txt',
      `FROM ${BUSYBOX_REF}`,
      'COPY --from=maker /made.txt /a.txt',
      'COPY --from=2 /second.txt /b.txt',
      `COPY --from=${BUSYBOX_REF} /bin/busybox /from-image/busybox`,
      'CMD cat /a.txt /b.txt; /from-image/busybox true && echo image',
    ].join('\n');
    const { id, events } = await build(engine, { context: { Dockerfile: dockerfile } });
    expect((await runImage(engine, id)).output).toBe('made\nsecond\nimage\n');
    expect(events.some((e) => e.type === 'step' && e.stage === 'broken')).toBe(false);
  });

  it('builds independent stages at the same time', async () => {
    const { engine } = await testEngine();
    // Each stage's RUN waits (at most 20 s) for the other's mark in a shared cache mount: they
    // finish only if both run at once.
    const waitFor = (mine: string, theirs: string): string =>
      `RUN --mount=type=cache,id=meet,sharing=shared,target=/meet touch /meet/${mine} && ` +
      `i=0; while [ ! -e /meet/${theirs} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; test -e /meet/${theirs}`;
    const dockerfile = [
      `FROM ${BUSYBOX_REF} AS a`,
      waitFor('a', 'b'),
      'RUN echo a > /a',
      `FROM ${BUSYBOX_REF} AS b`,
      waitFor('b', 'a'),
      'RUN echo b > /b',
      `FROM ${BUSYBOX_REF}`,
      'COPY --from=a /a /a',
      'COPY --from=b /b /b',
      'CMD cat /a /b',
    ].join('\n');
    const { id } = await build(engine, { context: { Dockerfile: dockerfile } });
    expect((await runImage(engine, id)).output).toBe('a\nb\n');
  });

  it('builds the target stage only', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      `FROM ${BUSYBOX_REF} AS dev`,
      'RUN echo dev > /which',
      'CMD cat /which',
      `FROM ${BUSYBOX_REF} AS prod`,
      'RUN exit 1',
    ].join('\n');
    const { id } = await build(engine, { context: { Dockerfile: dockerfile }, target: 'dev' });
    expect((await runImage(engine, id)).output).toBe('dev\n');
    await expect(Image.build({ engine, context: { Dockerfile: dockerfile }, target: 'nope' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'target',
    });
  });

  it('gives the stage FROM sees the global ARGs and buildArgs, and warns about unused build arguments', async () => {
    const { engine } = await testEngine();
    const dockerfile = [
      'ARG BASE=nothing',
      'FROM ${BASE}',
      'ARG BASE',
      'RUN echo "$BASE" > /base',
      'CMD cat /base',
    ].join('\n');
    const { id, events } = await build(engine, {
      context: { Dockerfile: dockerfile },
      buildArgs: { BASE: BUSYBOX_REF, UNUSED: '1' },
    });
    expect((await runImage(engine, id)).output).toBe(`${BUSYBOX_REF}\n`);
    expect(events).toContainEqual({
      type: 'warning',
      message: 'build argument UNUSED was not consumed by any ARG of the Dockerfile',
    });
  });
});

describe('Image.build: cache', () => {
  it('rebuilds an unchanged Dockerfile from the cache with the same image id, reruns only the steps after a changed file, and reruns all with noCache', async () => {
    const { engine } = await testEngine();
    const ctx = tempDir('ctx');
    fs.writeFileSync(join(ctx, 'first.txt'), 'one');
    fs.writeFileSync(join(ctx, 'second.txt'), 'two');
    fs.writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${BUSYBOX_REF}`,
        'COPY first.txt /',
        'RUN cat /first.txt > /seen-first',
        'COPY second.txt /',
        'RUN cat /second.txt > /seen-second',
      ].join('\n'),
    );
    const cold = await build(engine, { context: ctx });
    expect(cold.steps).toEqual(['COPY:done', 'RUN:done', 'COPY:done', 'RUN:done']);
    const warm = await build(engine, { context: ctx });
    expect(warm.steps).toEqual(['COPY:cached', 'RUN:cached', 'COPY:cached', 'RUN:cached']);
    expect(warm.id).toBe(cold.id);
    // A new mtime with the same content is the same input.
    fs.utimesSync(join(ctx, 'first.txt'), new Date(), new Date(Date.now() + 5000));
    expect((await build(engine, { context: ctx })).id).toBe(cold.id);
    fs.writeFileSync(join(ctx, 'second.txt'), 'changed');
    const changed = await build(engine, { context: ctx });
    expect(changed.steps).toEqual(['COPY:cached', 'RUN:cached', 'COPY:done', 'RUN:done']);
    expect(changed.id).not.toBe(cold.id);
    const fresh = await build(engine, { context: ctx, noCache: true });
    expect(fresh.steps).toEqual(['COPY:done', 'RUN:done', 'COPY:done', 'RUN:done']);
  });

  it('runs a step two builds need at the same time once, and the other build takes its result', async () => {
    const { engine } = await testEngine();
    const dockerfile = `FROM ${BUSYBOX_REF}\nRUN echo "$RANDOM-$$" > /once\nCMD cat /once`;
    const [one, two] = await Promise.all([
      build(engine, { context: { Dockerfile: dockerfile } }),
      build(engine, { context: { Dockerfile: dockerfile } }),
    ]);
    expect([one.steps[0], two.steps[0]].sort()).toEqual(['RUN:cached', 'RUN:done']);
    expect(one.id).toBe(two.id);
  });

  it('shares the cache with another process on the same root, and keeps the layers it hands out when an image is removed', async () => {
    const { engine, root } = await testEngine();
    const dockerfile = `FROM ${BUSYBOX_REF}\nRUN echo layer > /f\nCMD cat /f`;
    const here = await build(engine, { context: { Dockerfile: dockerfile }, tag: 'shared:1' });
    const script = [
      "import { Engine, Image } from './src/index.js';",
      `const engine = new Engine({ root: ${JSON.stringify(root)}, runRoot: ${JSON.stringify(join(root, 'run'))} });`,
      'const statuses = [];',
      `const op = Image.build({ engine, context: { Dockerfile: ${JSON.stringify(dockerfile)} } });`,
      "for await (const p of op) if (p.type === 'step' && p.status !== 'running') statuses.push(p.status);",
      'const img = await op;',
      'console.log(JSON.stringify({ id: (await img.inspect()).id, statuses }));',
      'engine.close();',
    ].join('\n');
    const out = await new Promise<string>((ok, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO });
      let text = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => (code === 0 ? ok(text) : fail(new Error(`child exited ${code}: ${err}`))));
    });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ id: here.id, statuses: ['cached', 'cached'] });
    await new Image('shared:1', { engine }).remove();
    const again = await build(engine, { context: { Dockerfile: dockerfile } });
    expect(again.steps).toEqual(['RUN:cached', 'CMD:cached']);
    expect((await runImage(engine, again.id)).output).toBe('layer\n');
  });
});

describe('Image.build: base images', () => {
  it.skipIf(!hasRegistry())('pulls a missing base image from its registry, as docker build does', async () => {
    await using reg = await startRegistry();
    const base = `${reg.host}/test/busybox:1`;
    {
      const { engine } = await testEngine();
      await new Image(BUSYBOX_REF, { engine }).tag(base);
      await new Image(base, { engine }).push();
    }
    const { engine } = await testEngine({ image: false });
    const { id } = await build(engine, { context: { Dockerfile: `FROM ${base}\nRUN echo pulled > /p\nCMD cat /p` } });
    expect(await new Image(base, { engine }).exists()).toBe(true);
    expect((await runImage(engine, id)).output).toBe('pulled\n');
  });
});

describe('Image.build: contexts', () => {
  it('reads a tar stream context and a map of in-memory files', async () => {
    const { engine } = await testEngine();
    const files = {
      Dockerfile: `FROM ${BUSYBOX_REF}\nCOPY data/hello.txt /\nCMD cat /hello.txt`,
      'data/hello.txt': Buffer.from('in memory\n'),
    };
    const fromMap = await build(engine, { context: files });
    expect((await runImage(engine, fromMap.id)).output).toBe('in memory\n');
    const dir = tempDir('tarctx');
    fs.mkdirSync(join(dir, 'data'));
    fs.writeFileSync(join(dir, 'Dockerfile'), files.Dockerfile);
    fs.writeFileSync(join(dir, 'data/hello.txt'), 'from a tar\n');
    const tar = await new Promise<Buffer>((ok, fail) => {
      const child = spawn('tar', ['-C', dir, '-cf', '-', '.']);
      const chunks: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.on('exit', (code) => (code === 0 ? ok(Buffer.concat(chunks)) : fail(new Error(`tar exited ${code}`))));
    });
    const fromTar = await build(engine, { context: Readable.from([tar]) });
    expect((await runImage(engine, fromTar.id)).output).toBe('from a tar\n');
  });
});

describe('Image.build: failures', () => {
  it('reports a failing RUN with its line, exit code and last output, tags nothing and leaves no container', async () => {
    const { engine } = await testEngine();
    const dockerfile = `FROM ${BUSYBOX_REF}\nRUN echo ok\nRUN echo about to fail; echo oops >&2; exit 3`;
    const err = await Image.build({ engine, context: { Dockerfile: dockerfile }, tag: 'never:1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BuildError);
    const b = err as BuildError;
    expect(b.code).toBe('BUILD_FAILED');
    expect(b.line).toBe(3);
    expect(b.exitCode).toBe(3);
    expect(b.instruction).toBe('RUN echo about to fail; echo oops >&2; exit 3');
    expect(b.output).toBe('about to fail\noops\n');
    expect(await new Image('never:1', { engine }).exists()).toBe(false);
    expect(await engine.containers.list({ all: true })).toEqual([]);
  });

  it('refuses a Dockerfile syntax error, a missing base image, a missing COPY source, a foreign FROM --platform and RUN --security=insecure with typed errors naming the line', async () => {
    const { engine } = await testEngine();
    await expect(Image.build({ engine, context: { Dockerfile: `FROM ${BUSYBOX_REF}\nFORM x` } })).rejects.toSatisfy(
      (e: unknown) => e instanceof InvalidArgumentError && /Dockerfile:2/.test(e.message),
    );
    await expect(Image.build({ engine, context: { Dockerfile: 'FROM 127.0.0.1:1/missing:1' } })).rejects.toMatchObject({
      code: 'BUILD_FAILED',
      line: 1,
    });
    await expect(
      Image.build({ engine, context: { Dockerfile: `FROM ${BUSYBOX_REF}\n\nCOPY missing.txt /` } }),
    ).rejects.toMatchObject({ code: 'BUILD_FAILED', line: 3 });
    await expect(
      Image.build({ engine, context: { Dockerfile: `FROM --platform=linux/s390x ${BUSYBOX_REF}` } }),
    ).rejects.toMatchObject({ code: 'BUILD_FAILED', line: 1 });
    await expect(
      Image.build({ engine, context: { Dockerfile: `FROM ${BUSYBOX_REF}\nRUN --security=insecure true` } }),
    ).rejects.toMatchObject({ code: 'BUILD_FAILED', line: 2 });
    await expect(Image.build({ engine, context: { Dockerfile: 'FROM x' }, tag: 'a@sha256:00' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'tag',
    });
  });
});
