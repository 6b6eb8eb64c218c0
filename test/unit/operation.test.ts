import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Operation } from '../../src/operation.js';

/** Resolves after the current macrotask, so pending microtasks (and unhandled-rejection checks) run. */
const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects every event of an async iterable. */
async function collect<P>(iterable: AsyncIterable<P>): Promise<P[]> {
  const out: P[] = [];
  for await (const p of iterable) out.push(p);
  return out;
}

/** A deferred promise that the test settles by hand. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('Operation', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  let saved: NodeJS.UnhandledRejectionListener[] = [];

  beforeEach(() => {
    unhandled.length = 0;
    // Take over unhandled rejections for the duration of each test so they can be asserted on.
    saved = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    for (const l of saved) process.on('unhandledRejection', l);
  });

  it('resolves with the work result when awaited', async () => {
    const op = new Operation<number>(async () => 7);
    await expect(op).resolves.toBe(7);
    expect(await op.then((v) => v * 2)).toBe(14);
  });

  it('accepts synchronous work and wraps existing promises', async () => {
    expect(await new Operation<string>(() => 'sync')).toBe('sync');
    expect(await Operation.resolve(Promise.resolve(3))).toBe(3);
    expect(await collect(Operation.resolve(1))).toEqual([]);
  });

  it('starts the work eagerly, before anyone awaits or iterates', () => {
    let started = false;
    new Operation<void>(() => {
      started = true;
    });
    expect(started).toBe(true);
  });

  it('yields every progress event in order and ends when the work ends', async () => {
    const op = new Operation<string, number>(async (emit) => {
      for (let i = 0; i < 5; i++) {
        emit(i);
        await tick();
      }
      return 'done';
    });
    expect(await collect(op)).toEqual([0, 1, 2, 3, 4]);
    expect(await op).toBe('done');
  });

  it('buffers from the start: a late iterator misses nothing', async () => {
    const op = new Operation<void, string>(async (emit) => {
      emit('a');
      emit('b');
      await tick(5);
      emit('c');
    });
    await tick(1);
    const late = collect(op);
    await op;
    expect(await late).toEqual(['a', 'b', 'c']);
    // An iterator created after the work ended still sees everything.
    expect(await collect(op)).toEqual(['a', 'b', 'c']);
    expect(op.events).toEqual(['a', 'b', 'c']);
    expect(op.settled).toBe(true);
  });

  it('supports several concurrent iterators and awaiting at the same time', async () => {
    const gate = deferred();
    const op = new Operation<number, number>(async (emit) => {
      emit(1);
      await gate.promise;
      emit(2);
      return 99;
    });
    const first = collect(op);
    const second = collect(op);
    const result = op.then((v) => v);
    gate.resolve();
    expect(await first).toEqual([1, 2]);
    expect(await second).toEqual([1, 2]);
    expect(await result).toBe(99);
  });

  it('drops events emitted after the work settled', async () => {
    let emitLater: ((p: number) => void) | undefined;
    const op = new Operation<void, number>((emit) => {
      emitLater = emit;
      emit(1);
    });
    await op;
    emitLater?.(2);
    expect(await collect(op)).toEqual([1]);
  });

  it('makes the iteration throw the work error after the events emitted before it', async () => {
    const boom = new Error('boom');
    const op = new Operation<void, number>(async (emit) => {
      emit(1);
      await tick();
      throw boom;
    });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const p of op) seen.push(p);
      })(),
    ).rejects.toBe(boom);
    expect(seen).toEqual([1]);
    await expect(op).rejects.toBe(boom);
  });

  it('turns a synchronous throw in the work into a rejection', async () => {
    const boom = new Error('sync boom');
    const op = new Operation<void>(() => {
      throw boom;
    });
    await expect(op).rejects.toBe(boom);
  });

  it('supports catch and finally', async () => {
    const order: string[] = [];
    const failing = new Operation<number>(async () => {
      throw new Error('x');
    });
    expect(await failing.catch(() => -1)).toBe(-1);
    const ok = new Operation<number>(async () => 5);
    expect(await ok.finally(() => order.push('finally'))).toBe(5);
    expect(order).toEqual(['finally']);
  });

  it('does not report an unhandled rejection when the operation is only iterated', async () => {
    const op = new Operation<void, number>(async (emit) => {
      emit(1);
      throw new Error('iterated only');
    });
    await expect(collect(op)).rejects.toThrow('iterated only');
    await tick(10);
    expect(unhandled).toEqual([]);
  });

  it('does not report an unhandled rejection when the operation is only awaited', async () => {
    const op = new Operation<void, number>(async () => {
      await tick();
      throw new Error('awaited only');
    });
    await expect(op).rejects.toThrow('awaited only');
    await tick(10);
    expect(unhandled).toEqual([]);
  });

  it('counts an iterator abandoned early as having observed the failure', async () => {
    const gate = deferred();
    const op = new Operation<void, number>(async (emit) => {
      emit(1);
      await gate.promise;
      throw new Error('after break');
    });
    for await (const _ of op) break;
    gate.resolve();
    await tick(10);
    expect(unhandled).toEqual([]);
  });

  it('reports an unhandled rejection, like a promise, when nobody awaits or iterates', async () => {
    const boom = new Error('ignored');
    new Operation<void>(async () => {
      throw boom;
    });
    await tick(10);
    expect(unhandled).toEqual([boom]);
  });

  it('passes an AbortSignal that abort() fires', async () => {
    const op = new Operation<string>(
      (_emit, signal) =>
        new Promise((resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
          setTimeout(() => resolve('too late'), 1000);
        }),
    );
    expect(op.signal.aborted).toBe(false);
    const reason = new Error('cancelled');
    op.abort(reason);
    await expect(op).rejects.toBe(reason);
    expect(op.signal.aborted).toBe(true);
  });

  it('follows the caller signal given in the options', async () => {
    const controller = new AbortController();
    const op = new Operation<void>(
      (_emit, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true });
        }),
      { signal: controller.signal },
    );
    controller.abort();
    await expect(op).rejects.toThrow('stopped');
  });

  it('ignores abort() after the work has finished', async () => {
    const op = new Operation<number>((_emit, _signal) => 1);
    await op;
    op.abort();
    expect(op.signal.aborted).toBe(false);
    expect(await op).toBe(1);
  });

  it('is a thenable that async functions adopt, and has a string tag', async () => {
    const op = new Operation<number>(async () => 11);
    const adopt = async (): Promise<number> => op;
    expect(await adopt()).toBe(11);
    expect(Object.prototype.toString.call(op)).toBe('[object Operation]');
  });
});
