import { describe, expect, it } from 'vitest';
import { Engine, StateError } from '../../src/index.js';
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
});
