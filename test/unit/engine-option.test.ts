/**
 * Every public entry point that takes `{ engine }` refuses a value that is not an Engine with
 * `INVALID_ARGUMENT` naming `engine`, before touching any state root (not even the default one).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Container, Engine, Image, Network, Volume } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';

let defaultRoot = '';
let saved: string | undefined;
beforeAll(() => {
  saved = process.env.BERTH_ROOT;
  // The default engine's root, should anything fall back to it: it must stay unmade.
  defaultRoot = join(tempDir('engine-option'), 'default-root');
  process.env.BERTH_ROOT = defaultRoot;
});
afterAll(() => {
  if (saved === undefined) delete process.env.BERTH_ROOT;
  else process.env.BERTH_ROOT = saved;
});

/** What calling `f` gives: its error (thrown at once or as a rejection), or 'ok'. */
async function outcome(f: () => unknown): Promise<unknown> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    return e;
  }
}

const bad = { engine: 'nope' } as never;
const CALLS: Array<[string, () => unknown]> = [
  ['new Image', () => new Image('busybox', bad)],
  ['Image.list', () => Image.list(bad)],
  ['Image.import', () => Image.import('/nonexistent.tar', bad)],
  ['Image.load', () => Image.load('/nonexistent.tar', bad)],
  ['Image.save', () => Image.save(['busybox'], bad)],
  ['Image.prune', () => Image.prune(bad)],
  ['new Container', () => new Container('web', bad)],
  ['Container.create', () => Container.create({ image: 'busybox', ...(bad as object) } as never)],
  ['Container.run', () => Container.run('busybox', ['true'], bad)],
  ['Container.list', () => Container.list(bad)],
  ['Container.prune', () => Container.prune(bad)],
  ['new Volume', () => new Volume('data', bad)],
  ['Volume.list', () => Volume.list(bad)],
  ['Volume.prune', () => Volume.prune(bad)],
  ['new Network', () => new Network('backend', bad)],
  ['Network.list', () => Network.list(bad)],
  ['Network.prune', () => Network.prune(bad)],
];

describe('the engine option', () => {
  for (const [name, call] of CALLS) {
    it(`${name} refuses an engine that is not an Engine with INVALID_ARGUMENT naming engine, touching no root`, async () => {
      expect(await outcome(call)).toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'engine',
        message: expect.stringMatching(/Engine/) as string,
      });
      expect(existsSync(defaultRoot)).toBe(false);
    });
  }
});

describe('an engine of another copy of berth', () => {
  it('is taken as an engine (recognised by its brand, as the ESM and CJS builds loaded together need)', async () => {
    vi.resetModules();
    const other = (await import('../../src/index.js')) as typeof import('../../src/index.js');
    const root = tempDir('engine-other-copy');
    const engine = new other.Engine({ root: join(root, 'root'), runRoot: join(root, 'run') }) as unknown as Engine;
    expect(engine instanceof Engine).toBe(false);
    for (const make of [
      () => new Container('web', { engine }),
      () => new Volume('data', { engine }),
      () => new Network('n', { engine }),
      () => new Image('busybox', { engine }),
    ]) {
      expect(make).not.toThrow();
    }
    expect(existsSync(join(root, 'root'))).toBe(false);
  });
});
