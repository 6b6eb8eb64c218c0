import { describe, expect, it } from 'vitest';
import { Container, Engine, StateError } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';
import { tempDir } from '../helpers/tmp.js';

describe('Engine.close', () => {
  it('ends a pending events() iterator: its next() resolves done', { timeout: 5000 }, async () => {
    const root = tempDir('engine-close');
    const engine = new Engine({ root, runRoot: `${root}/run` });
    const it = engine.events()[Symbol.asyncIterator]();
    const pending = it.next();
    engine.close();
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
  });

  it('refuses events() once closed, with a StateError', () => {
    const root = tempDir('engine-close');
    const engine = new Engine({ root, runRoot: `${root}/run` });
    engine.close();
    expect(() => engine.events()).toThrow(StateError);
  });

  it(
    'ends a logs({ follow: true }) iterator of a detached container that outlives the close',
    { timeout: 10_000 },
    async () => {
      const { engine } = await testEngine();
      const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo hi; sleep 60'], {
        engine,
        ...NO_NETWORK,
        detach: true,
      });
      const lines = c.logs({ follow: true })[Symbol.asyncIterator]();
      expect((await lines.next()).value).toMatchObject({ text: 'hi\n' });
      engine.close();
      expect((await lines.next()).done).toBe(true);
      expect((await c.inspect()).state.status).toBe('running');
    },
  );

  it('ends a stats() iterator of a detached container that outlives the close', { timeout: 10_000 }, async () => {
    const { engine } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, ...NO_NETWORK, detach: true });
    const stats = c.stats({ interval: 10 });
    expect((await stats.next()).done).toBe(false);
    engine.close();
    expect((await stats.next()).done).toBe(true);
    expect((await c.inspect()).state.status).toBe('running');
  });
});
