/**
 * `signal` and `timeout` of `Container.run`, `start`, `spawn`, `exec` (already aborted) and
 * `engine.events()`: a cancelled call rejects with `ABORTED` (the signal's reason as cause) or
 * `TIMEOUT` and leaves nothing half-done — run removes the container it made, start leaves the
 * container stopped, spawn kills its process. (On `run`, `timeout` is the container's run time
 * limit, tested in container-timeout.test.ts; run's own bound is its `signal` and `waitFor.timeout`.) Every test's engine is checked for leftover mounts,
 * cgroups and processes after it (test/helpers/engine.ts).
 */
import { describe, expect, it } from 'vitest';
import { Container, Image, type Engine } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';
import { hasRegistry, startRegistry } from '../helpers/registry.js';
import { startStallProxy } from '../helpers/stall-proxy.js';

/** Resolves once `engine` has a running container. */
async function someRunning(engine: Engine): Promise<void> {
  const running = async (): Promise<boolean> =>
    (await engine.containers.list({ all: true })).some((r) => r.state.status === 'running');
  while (!(await running())) await new Promise((r) => setTimeout(r, 20));
}

/** The command lines of the processes in `c`. */
async function processes(c: Container): Promise<string> {
  return (await c.exec(['ps', '-o', 'args'])).stdout;
}

const NEVER = { log: 'a line that never comes' };

describe('Container.run', () => {
  it('an already-aborted signal rejects with ABORTED (its reason as cause) and creates nothing', async () => {
    const { engine } = await testEngine();
    const reason = new Error('not now');
    await expect(
      Container.run(BUSYBOX_REF, ['true'], { engine, ...NO_NETWORK, signal: AbortSignal.abort(reason) }),
    ).rejects.toMatchObject({ code: 'ABORTED', name: 'AbortedError', cause: reason });
    expect(await Container.list({ engine, all: true })).toEqual([]);
  });

  it('aborted while it waits for its container: ABORTED, and the container is removed', async () => {
    const { engine } = await testEngine();
    const ac = new AbortController();
    const running = Container.run(BUSYBOX_REF, ['sleep', '600'], {
      engine,
      ...NO_NETWORK,
      waitFor: NEVER,
      signal: ac.signal,
    });
    await someRunning(engine);
    ac.abort(new Error('enough'));
    await expect(running).rejects.toMatchObject({ code: 'ABORTED', cause: { message: 'enough' } });
    expect(await Container.list({ engine, all: true })).toEqual([]);
  });

  it('refuses a signal that is not an AbortSignal naming the field, before anything is made', async () => {
    const { engine } = await testEngine();
    await expect(
      Container.run(BUSYBOX_REF, ['true'], { engine, signal: 'stop' as unknown as AbortSignal }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'signal' });
    expect(await Container.list({ engine, all: true })).toEqual([]);
  });

  it.skipIf(!hasRegistry())('aborted while it pulls the missing image: ABORTED, no image, no container', async () => {
    const { engine } = await testEngine();
    await using reg = await startRegistry();
    await new Image(BUSYBOX_REF, { engine }).tag(`${reg.host}/test/busybox:1`);
    await new Image(`${reg.host}/test/busybox:1`, { engine }).push();
    await using proxy = await startStallProxy(reg.url, (req) =>
      req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') ? 'body' : undefined,
    );
    const fresh = await testEngine({ image: false });
    const ac = new AbortController();
    const running = Container.run(`${proxy.host}/test/busybox:1`, ['true'], {
      engine: fresh.engine,
      ...NO_NETWORK,
      signal: ac.signal,
    });
    await proxy.stalled;
    ac.abort();
    await expect(running).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await Container.list({ engine: fresh.engine, all: true })).toEqual([]);
    expect(await Image.list({ engine: fresh.engine })).toEqual([]);
  });
});

describe('container.start', () => {
  it('an already-aborted signal rejects with ABORTED and starts nothing', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({ engine, image: BUSYBOX_REF, command: ['sleep', '600'], ...NO_NETWORK });
    await expect(c.start({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await c.inspect()).state.status).toBe('created');
    await c.remove();
  });

  it('aborted while it waits: ABORTED, and the container is left stopped (not removed)', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({ engine, image: BUSYBOX_REF, command: ['sleep', '600'], ...NO_NETWORK });
    const ac = new AbortController();
    const starting = c.start({ waitFor: NEVER, signal: ac.signal });
    await someRunning(engine);
    ac.abort();
    await expect(starting).rejects.toMatchObject({ code: 'ABORTED' });
    const { state } = await c.inspect();
    expect(state.status).toBe('exited');
    expect(state.exitCode).toBe(137);
    await c.remove();
  });

  it('aborted while it waits on a container that already ran: ABORTED, and the container is left running', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    const ac = new AbortController();
    const starting = c.start({ waitFor: NEVER, signal: ac.signal });
    const before = (await c.inspect()).state.startedAt;
    ac.abort();
    await expect(starting).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await c.inspect()).state).toMatchObject({ status: 'running', startedAt: before });
  });

  it('its timeout while it waits: TIMEOUT (the call’s, no log lines), and the container is left stopped', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({ engine, image: BUSYBOX_REF, command: ['sleep', '600'], ...NO_NETWORK });
    const err = await c.start({ waitFor: NEVER, timeout: 1500 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT', name: 'TimeoutError' });
    expect((err as Error).message).toMatch(/^starting container .* did not end within 1500 ms$/);
    expect((await c.inspect()).state.status).toBe('exited');
    await c.remove();
  });

  it('a waitFor timeout shorter than the call’s keeps its own TIMEOUT with the log lines (the container left running)', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({
      engine,
      image: BUSYBOX_REF,
      command: ['sh', '-c', 'echo hello; exec sleep 600'],
      ...NO_NETWORK,
    });
    const err = await c.start({ waitFor: { ...NEVER, timeout: 500 }, timeout: 60_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    expect((err as Error).message).toContain('not ready after 500 ms');
    expect((err as Error).message).toContain('stdout: hello');
    expect((await c.inspect()).state.status).toBe('running');
    await c.remove({ force: true });
  });

  it('refuses a bad timeout naming the field, before it starts anything', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({ engine, image: BUSYBOX_REF, command: ['sleep', '600'], ...NO_NETWORK });
    for (const timeout of [0, 2.5, -3, Infinity, 2 ** 31])
      await expect(c.start({ timeout })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'timeout' });
    expect((await c.inspect()).state.status).toBe('created');
    await c.remove();
  });
});

describe('container.spawn, exec and wait', () => {
  it('spawn with an already-aborted signal starts nothing; exited rejects with ABORTED', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    const p = c.spawn(['sleep', '300'], { signal: AbortSignal.abort(new Error('no')) });
    await expect(p.exited).rejects.toMatchObject({ code: 'ABORTED', cause: { message: 'no' } });
    expect(p.pid).toBeUndefined();
    expect(await processes(c)).not.toMatch(/sleep 300/);
  });

  it('spawn aborted while it runs: the process is killed and exited rejects with ABORTED', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    const ac = new AbortController();
    const p = c.spawn(['sleep', '300'], { signal: ac.signal });
    await p.started;
    expect(await processes(c)).toMatch(/sleep 300/);
    ac.abort();
    await expect(p.exited).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await processes(c)).not.toMatch(/sleep 300/);
  });

  it('spawn aborted while it starts: the process is still killed and exited rejects with ABORTED', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    const ac = new AbortController();
    const p = c.spawn(['sleep', '300'], { signal: ac.signal });
    ac.abort(); // the start is under way: the signal was not fired when spawn() checked it
    await expect(p.exited).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await processes(c)).not.toMatch(/sleep 300/);
  });

  it('spawn timeout: the process is killed and exited rejects with TIMEOUT', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    const p = c.spawn(['sleep', '300'], { timeout: 1000 });
    await expect(p.exited).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await processes(c)).not.toMatch(/sleep 300/);
  });

  it('spawn refuses a bad timeout at once, naming the field', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    expect(() => c.spawn(['true'], { timeout: 0 })).toThrow(expect.objectContaining({ field: 'timeout' }));
  });

  it('wait refuses a timeout beyond what a timer can wait (2^31 ms: it would fire at once), naming the field', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    await expect(c.wait({ timeout: 2 ** 31 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'timeout' });
  });

  it('exec with an already-aborted signal rejects with ABORTED (its reason as cause)', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '600'], { engine, ...NO_NETWORK });
    const reason = new Error('no');
    await expect(c.exec(['true'], { signal: AbortSignal.abort(reason) })).rejects.toMatchObject({
      code: 'ABORTED',
      cause: reason,
    });
  });
});

describe('engine.events', () => {
  it('an already-aborted signal: the first next() throws ABORTED', async () => {
    const { engine } = await testEngine();
    const it = engine.events({ signal: AbortSignal.abort() })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('aborted while following: the events so far, then ABORTED from the iterator', async () => {
    const { engine } = await testEngine();
    const ac = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of engine.events({ type: 'container', signal: ac.signal })) {
        seen.push(e.action);
        if (e.action === 'create') ac.abort();
      }
    })();
    const c = await Container.create({ engine, image: BUSYBOX_REF, command: ['true'], ...NO_NETWORK });
    await expect(following).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toEqual(['create']);
    await c.remove();
  });

  it('its timeout while following a quiet log: TIMEOUT from the iterator', async () => {
    const { engine } = await testEngine();
    const following = (async () => {
      for await (const _ of engine.events({ type: 'network', timeout: 500 }));
    })();
    await expect(following).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('engine.close still ends it quietly, signal or not', async () => {
    const { engine } = await testEngine();
    const it = engine.events({ signal: new AbortController().signal, timeout: 60_000 })[Symbol.asyncIterator]();
    const pending = it.next();
    engine.close();
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it('refuses a bad timeout at once, naming the field', async () => {
    const { engine } = await testEngine();
    expect(() => engine.events({ timeout: -1 })).toThrow(expect.objectContaining({ field: 'timeout' }));
  });
});
