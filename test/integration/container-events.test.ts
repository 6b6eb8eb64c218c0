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
    for await (const e of engine.events({ since, until: Date.now() + 200, type: ['container'], action: ['start', 'die'] })) filtered.push(e);
    const id = c.ref;
    expect(filtered.map((e) => [e.action, e.id])).toEqual([['start', id], ['die', id]]);
    expect(filtered[1]!.attributes).toMatchObject({ name: 'ev', image: BUSYBOX_REF, exitCode: '2', app: 'x' });
    await expect.poll(() => seen.filter((e) => e.id === id).map((e) => e.action), { timeout: 2000 }).toEqual(['create', 'start', 'die', 'destroy']);
  });
});
