/**
 * `Container.pool` on the real kernel: a taken member runs and answers; the pool refills in the
 * background; processes sharing the root never take the same member; a taker killed by SIGKILL
 * leaves no container after the next open; close removes the idle members (and the afterEach leak
 * check finds no mount, cgroup or process left); bad options are refused before anything is made.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { Container, Engine, POOL_LABEL, type ContainerPool } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';
import { poolSpec } from '../../src/container/pool.js';
import { PoolStore } from '../../src/container/pool-store.js';

/** The spec the tests and `test/fixtures/pool-process.ts` share (the same spec: the same pool). */
const SPEC = { image: BUSYBOX_REF, command: ['sleep', '600'], ...NO_NETWORK };

/** A process running `test/fixtures/pool-process.ts` on `root`, and its stdout lines. */
function taker(
  root: string,
  takes: number,
): { proc: ChildProcessByStdio<Writable, Readable, null>; line: () => Promise<string> } {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/pool-process.ts', root, BUSYBOX_REF, String(takes)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const line = async (): Promise<string> => {
    const next = await lines.next();
    if (next.done) throw new Error(`the taker exited (${proc.exitCode ?? proc.signalCode}) before printing a line`);
    return next.value;
  };
  return { proc, line };
}

/** Resolves once `proc` has exited. */
function exited(proc: ChildProcessByStdio<Writable, Readable, null>): Promise<unknown> {
  return proc.exitCode !== null || proc.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => proc.once('exit', resolve));
}

/** The members of pool `key` on `engine` (any status). */
async function members(engine: Engine, key: string): Promise<string[]> {
  return (await Container.list({ all: true, label: `${POOL_LABEL}=${key}`, engine })).map((s) => s.id).sort();
}

/** Waits until `pool` has `n` idle members (its refill runs in the background). */
async function untilIdle(pool: ContainerPool<Container>, n: number): Promise<void> {
  while (pool.idle !== n) await new Promise((r) => setTimeout(r, 20));
}

describe('Container.pool', () => {
  it('take hands out a running member whose process answers, and the pool refills to its size in the background', async () => {
    const { engine } = await testEngine();
    await using pool = await Container.pool({ ...SPEC, engine }, { size: 2 });
    expect(pool.idle).toBe(2);
    const idleBefore = await members(engine, pool.key);
    await using c = await pool.take();
    const id = await c.id();
    expect(idleBefore).toContain(id);
    expect((await c.inspect()).state.status).toBe('running');
    expect(await c.exec(['echo', 'hi'])).toMatchObject({ exitCode: 0, stdout: 'hi\n' });
    await untilIdle(pool, 2);
    const after = await members(engine, pool.key);
    expect(after).toHaveLength(3); // the taken one and two idle: never more than the size idle
    expect(after).toContain(id);
  });

  it('two processes taking at once on one root never get the same container, refill to the size without overshooting, and the last close leaves none', async () => {
    const { engine, root } = await testEngine();
    const procs = [taker(root, 3), taker(root, 3)];
    try {
      for (const p of procs) expect(await p.line()).toBe('open');
      for (const p of procs) p.proc.stdin.write('take\n');
      const ids = (await Promise.all(procs.map(async (p) => JSON.parse(await p.line()) as string[]))).flat();
      expect(ids).toHaveLength(6);
      expect(new Set(ids).size).toBe(6);
      // Both refill (one at a time, under the pool's lock): two idle in the end, never more.
      const { key } = poolSpec(SPEC, { size: 2 });
      const store = new PoolStore(join(root, 'pools', key));
      while (store.idle().length < 2) await new Promise((r) => setTimeout(r, 20));
      expect(await members(engine, key)).toHaveLength(8);
      for (const p of procs) p.proc.stdin.end();
      await Promise.all(procs.map((p) => exited(p.proc)));
      expect(procs.map((p) => p.proc.exitCode)).toEqual([0, 0]);
      expect(await Container.list({ all: true, engine })).toEqual([]);
    } finally {
      for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
    }
  });

  it('a taker killed by SIGKILL leaves no container once the pool is opened again', async () => {
    const { engine, root } = await testEngine();
    const p = taker(root, 1);
    let id: string;
    try {
      expect(await p.line()).toBe('open');
      p.proc.stdin.write('take\n');
      [id] = JSON.parse(await p.line()) as [string];
      expect((await new Container(id, { engine }).inspect()).state.status).toBe('running');
    } finally {
      p.proc.kill('SIGKILL');
      await exited(p.proc);
    }
    await using pool = await Container.pool({ ...SPEC, engine }, { size: 2 });
    await expect(new Container(id, { engine }).inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    // The killed process's idle members serve this pool: nothing else is left of it.
    expect(await members(engine, pool.key)).toHaveLength(2);
  });

  it('close removes the idle members once the last handle on the pool closes, and the containers taken through it', async () => {
    const { engine } = await testEngine();
    const first = await Container.pool({ ...SPEC, engine }, { size: 2 });
    const second = await Container.pool({ ...SPEC, engine }, { size: 2 });
    expect(second.key).toBe(first.key);
    const kept = await first.take();
    await untilIdle(first, 2);
    await first.close();
    await expect(kept.inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    expect(await members(engine, first.key)).toHaveLength(2); // the second handle still holds the pool
    await expect(first.take()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await second.close();
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });

  it('a spec whose program cannot start fails the open, and leaves no container', async () => {
    const { engine } = await testEngine();
    await expect(Container.pool({ ...SPEC, command: ['/no/such/program'], engine }, { size: 2 })).rejects.toMatchObject(
      { code: 'COMMAND_NOT_FOUND' },
    );
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });

  it('with waitFor, a member is handed out only once its condition held (checked until it did)', async () => {
    const { engine } = await testEngine();
    // Holds on its third check: a member handed out has been checked at least three times.
    const third = ['sh', '-c', 'echo x >> /tmp/checks; [ "$(wc -l < /tmp/checks)" -ge 3 ]'];
    await using pool = await Container.pool({ ...SPEC, engine }, { size: 1, waitFor: { exec: third } });
    await using c = await pool.take();
    expect((await c.exec(['wc', '-l', '/tmp/checks'])).stdout).toMatch(/^3 /);
    await using own = await pool.take(); // none idle: made by the take, ready too
    expect((await own.exec(['wc', '-l', '/tmp/checks'])).stdout).toMatch(/^3 /);
  });

  it('a member that never gets ready fails the open with TIMEOUT, and leaves no container', async () => {
    const { engine } = await testEngine();
    await expect(
      Container.pool({ ...SPEC, engine }, { size: 2, waitFor: { exec: ['false'], timeout: 300 } }),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await Container.list({ all: true, engine })).toEqual([]);
  });

  it('bad options and specs are refused, naming the field, before anything is made', async () => {
    const root = join(tempDir('pool-bad'), 'root');
    const engine = new Engine({ root, runRoot: join(root, 'run') });
    try {
      const cases: Array<[Parameters<typeof Container.pool>[0], Parameters<typeof Container.pool>[1], string]> = [
        [SPEC, { size: 0 }, 'size'],
        [SPEC, { size: 65 }, 'size'],
        [SPEC, { size: 1.5 }, 'size'],
        [SPEC, { name: '../x' }, 'name'],
        [SPEC, { nope: 1 } as never, 'nope'],
        [SPEC, { engine: 'x' } as never, 'engine'],
        [SPEC, { waitFor: {} }, 'waitFor'],
        [SPEC, { waitFor: { port: 0 } }, 'waitFor.port'],
        [{ ...SPEC, name: 'one' }, {}, 'name'],
        [{ ...SPEC, detach: false }, {}, 'detach'],
        [{ ...SPEC, workdir: 'relative' }, {}, 'workdir'],
        [{ ...SPEC, image: '' }, {}, 'image'],
      ];
      for (const [spec, options, field] of cases) {
        await expect(Container.pool({ ...spec, engine }, options), field).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          field,
        });
      }
      expect(existsSync(root)).toBe(false);
    } finally {
      engine.close();
    }
  });
});
