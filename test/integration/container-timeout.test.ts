/**
 * The run time limit (`timeout` on create): the whole cgroup killed when it passes, reported by
 * `inspect().state.timedOut` and a `timeout` event before `die`.
 */
import { describe, expect, it } from 'vitest';
import { Container, InvalidArgumentError } from '../../src/index.js';
import type { BerthEvent } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';
import { processAlive } from '../helpers/process.js';

describe('container run time limit (timeout)', () => {
  it('kills a sleep 60 with timeout 500 ms: exit 137, state.timedOut, a timeout event before die', async () => {
    const { engine } = await testEngine();
    const since = Date.now();
    const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK, timeout: 500 });
    expect((await c.wait()).exitCode).toBe(137);
    const info = await c.inspect();
    expect(info.state.exitCode).toBe(137);
    expect(info.state.timedOut).toBe(true);
    const actions: string[] = [];
    for await (const e of engine.events({
      since,
      until: Date.now() + 200,
      type: ['container'],
    }) as AsyncIterable<BerthEvent>)
      if (e.id === c.ref) actions.push(e.action);
    expect(actions.filter((a) => a === 'timeout' || a === 'die')).toEqual(['timeout', 'die']);
  });

  it('kills the processes PID 1 forked too (the whole cgroup)', async () => {
    const { engine } = await testEngine();
    const c = await Container.create({
      image: BUSYBOX_REF,
      command: ['sh', '-c', 'sleep 60 & wait'],
      engine,
      ...NO_NETWORK,
      timeout: 1500,
    });
    await c.start();
    let pids: number[] = [];
    while (pids.length < 2) pids = (await c.top()).map((p) => p.pid);
    expect((await c.wait()).exitCode).toBe(137);
    expect((await c.inspect()).state.timedOut).toBe(true);
    expect(pids.filter(processAlive)).toEqual([]);
  });

  it('kills a detached container at its timeout while the engine that started it runs', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK, detach: true, timeout: 500 });
    expect((await c.wait()).exitCode).toBe(137);
    expect((await c.inspect()).state.timedOut).toBe(true);
  });

  it('leaves timedOut false for a container that ends before its timeout', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['true'], { engine, ...NO_NETWORK, timeout: 60_000 });
    expect((await c.wait()).exitCode).toBe(0);
    expect((await c.inspect()).state.timedOut).toBe(false);
  });

  it.each([0, -5, 1.5, '500'])('refuses timeout %s with InvalidArgumentError naming timeout', async (timeout) => {
    const { engine } = await testEngine({ image: false });
    await expect(Container.create({ image: BUSYBOX_REF, engine, timeout: timeout as number })).rejects.toMatchObject({
      field: 'timeout',
    });
    await expect(Container.create({ image: BUSYBOX_REF, engine, timeout: timeout as number })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});
