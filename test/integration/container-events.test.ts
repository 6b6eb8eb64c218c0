/**
 * Container events through `engine.events()` (async iterator with filters) and `engine.on()`.
 */
import { describe, expect, it } from 'vitest';
import { Container, type BerthEvent } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

describe('container events', () => {
  it('delivers create, start, die and destroy, filtered by type and action', async () => {
    const { engine } = await testEngine();
    const since = Date.now();
    const seen: BerthEvent[] = [];
    engine.on('container', (e) => seen.push(e));
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'exit 2'], { engine, name: 'ev', labels: { app: 'x' } });
    await c.wait();
    await c.remove();
    const filtered: BerthEvent[] = [];
    for await (const e of engine.events({
      since,
      until: Date.now() + 200,
      type: ['container'],
      action: ['start', 'die'],
    }))
      filtered.push(e);
    const id = c.ref;
    expect(filtered.map((e) => [e.action, e.id])).toEqual([
      ['start', id],
      ['die', id],
    ]);
    expect(filtered[1]!.attributes).toMatchObject({ name: 'ev', image: BUSYBOX_REF, exitCode: '2', app: 'x' });
    await expect
      .poll(() => seen.filter((e) => e.id === id).map((e) => e.action), { timeout: 2000 })
      .toEqual(['create', 'start', 'die', 'destroy']);
  });

  it('delivers exec_create, exec_start and exec_die for an exec, with its id, command and exit code', async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sleep', '30'], { engine, network: 'none' });
    const since = Date.now();
    expect((await c.exec(['sh', '-c', 'exit 3'])).exitCode).toBe(3);
    const events: BerthEvent[] = [];
    for await (const e of engine.events({
      since,
      until: Date.now() + 200,
      action: ['exec_create', 'exec_start', 'exec_die'],
    }))
      events.push(e);
    expect(events.map((e) => e.action)).toEqual(['exec_create', 'exec_start', 'exec_die']);
    const execID = events[0]!.attributes.execID;
    expect(execID).toMatch(/^[0-9a-f]{32}$/);
    for (const e of events) expect(e).toMatchObject({ id: c.ref, attributes: { execID, command: 'sh -c exit 3' } });
    expect(events[2]!.attributes.exitCode).toBe('3');
    await c.remove({ force: true });
  });
});
