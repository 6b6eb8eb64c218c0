/**
 * `mapLimit` (image/pull.ts), which runs the layers of a pull, a push and a load a few at a
 * time: results in order, the limit held, and failures: the first stops new work and is thrown
 * once the work under way has settled, with that work's failures attached, not dropped.
 */
import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../src/image/pull.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('mapLimit', () => {
  it('returns the results in the order of the items, running at most `limit` at once', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([1, 2, 3, 4, 5], 2, async (n, i) => {
      most = Math.max(most, ++running);
      await tick();
      running--;
      return n * 10 + i;
    });
    expect(out).toEqual([10, 21, 32, 43, 54]);
    expect(most).toBe(2);
  });

  it('starts no new item after a failure, and throws it after the work under way has settled', async () => {
    const started: number[] = [];
    let settled = 0;
    const err = await mapLimit([0, 1, 2, 3], 2, async (n) => {
      started.push(n);
      if (n === 0) throw new Error('first');
      await tick();
      settled++;
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('first');
    expect(started).toEqual([0, 1]);
    expect(settled).toBe(1);
  });

  it('keeps the failure of work under way as the cause of the first failure', async () => {
    const err = await mapLimit([0, 1], 2, async (n) => {
      if (n === 1) await tick();
      throw new Error(n === 0 ? 'first' : 'second');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('first');
    expect(((err as Error).cause as Error | undefined)?.message).toBe('second');
  });
});
