/**
 * `Operation<T, P>`: the value that long work in berth returns — a promise of the result and a
 * stream of progress events in one object, in the spirit of execa's merged promise.
 *
 * ```text
 *   work(emit, signal) ──emit(p)──▶ event buffer ──▶ every iterator (from event 0)
 *          │
 *          └──── resolves / rejects ──▶ then / catch / finally, and ends every iterator
 * ```
 *
 * @module
 */

/**
 * The function an {@link Operation} runs. It receives `emit`, which publishes a progress event to
 * every iterator of the operation, and an `AbortSignal` that fires when the operation is cancelled
 * (through {@link Operation.abort} or the `signal` given in {@link OperationOptions}).
 *
 * @typeParam T - The result the work resolves with.
 * @typeParam P - The type of the progress events it emits.
 */
export type OperationWork<T, P> = (emit: (progress: P) => void, signal: AbortSignal) => T | PromiseLike<T>;

/** Options for {@link Operation}'s constructor. */
export interface OperationOptions {
  /**
   * Cancels the work when it fires. The work sees it through the `signal` it receives; what it does
   * then (stop early and reject, usually with the signal's reason) is up to the work. Absent: the
   * operation can still be cancelled through {@link Operation.abort}.
   */
  signal?: AbortSignal;
}

type Outcome = { ok: true } | { ok: false; error: unknown };

/**
 * Long-running work that is both a promise of its result and a stream of its progress.
 *
 * - **Await it** (or call `then`/`catch`/`finally`) for the result, as with a promise.
 * - **Iterate it** with `for await` for progress events. Every iterator starts at the first event
 *   ever emitted (events are buffered for the life of the operation), so an iterator created late
 *   misses nothing. Iteration ends when the work ends, and throws the work's error if it failed.
 * - Both may be used on the same operation, any number of times.
 * - The work starts at once, when the operation is constructed, like a promise's executor.
 *
 * **Failures and unhandled rejections.** An operation behaves like a plain promise that counts
 * iteration as handling: if the work fails and nobody awaited it (`then`, `catch`, `finally`,
 * `await`) *or* iterated it (asked for its async iterator), the failure surfaces as an
 * `unhandledRejection`, so an ignored failure is never silent. Once someone iterates it, the
 * iterator receives the error and no unhandled rejection is reported, even if nobody awaits the
 * operation; and the other way round. Breaking out of a `for await` loop early also counts as
 * having observed the operation (the same as attaching a handler to a promise and then ignoring
 * it); it does not cancel the work — call {@link Operation.abort} for that.
 *
 * @typeParam T - The result.
 * @typeParam P - The progress events.
 *
 * @example
 * ```ts
 * import { Operation } from 'berth';
 *
 * const op = new Operation<number, { done: number }>(async (emit, signal) => {
 *   for (let done = 1; done <= 3; done++) {
 *     signal.throwIfAborted();
 *     emit({ done });
 *   }
 *   return 42;
 * });
 * for await (const p of op) console.log(`step ${p.done}`); // step 1, step 2, step 3
 * console.log(await op); // 42
 * ```
 */
export class Operation<T, P = never> implements PromiseLike<T>, AsyncIterable<P> {
  readonly #events: P[] = [];
  readonly #controller = new AbortController();
  readonly #result: Promise<T>;
  readonly #signal: AbortSignal;
  #outcome: Outcome | undefined;
  #wake: (() => void) | undefined;
  #changed: Promise<void> | undefined;

  /**
   * Starts `work` at once and returns the operation that tracks it.
   *
   * @param work - The work; see {@link OperationWork}. It may throw synchronously: that becomes the
   *   operation's failure, as in an async function.
   * @param options - See {@link OperationOptions}.
   */
  constructor(work: OperationWork<T, P>, options: OperationOptions = {}) {
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#controller.signal])
      : this.#controller.signal;
    this.#signal = signal;
    const emit = (progress: P): void => {
      if (this.#outcome) return; // late events (after the work settled) are dropped
      this.#events.push(progress);
      this.#notify();
    };
    // No handler is attached to #result here: a failure nobody observes stays unhandled.
    this.#result = (async () => {
      try {
        const value = await work(emit, signal);
        this.#settle({ ok: true });
        return value;
      } catch (error) {
        this.#settle({ ok: false, error });
        throw error;
      }
    })();
  }

  /**
   * Wraps an existing promise (or value) as an operation that emits no progress.
   *
   * @example
   * ```ts
   * const op = Operation.resolve(Promise.resolve('done'));
   * console.log(await op); // 'done'
   * ```
   */
  static resolve<T, P = never>(value: T | PromiseLike<T>): Operation<T, P> {
    return new Operation<T, P>(() => value);
  }

  /** The signal the work receives; it fires once {@link Operation.abort} is called or the caller's signal fires. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /** True once the work has finished, successfully or not. */
  get settled(): boolean {
    return this.#outcome !== undefined;
  }

  /** Every progress event emitted so far, in order (a copy). */
  get events(): readonly P[] {
    return this.#events.slice();
  }

  /**
   * Asks the work to stop by aborting the signal it received. The operation still settles however
   * the work decides (usually it rejects with `reason`). Does nothing once the work has finished.
   *
   * @param reason - The abort reason; defaults to an `AbortError` `DOMException`.
   */
  abort(reason?: unknown): void {
    if (!this.#outcome) this.#controller.abort(reason);
  }

  /** Attaches callbacks for the result and/or the failure, as `Promise.prototype.then` does. */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#result.then(onfulfilled, onrejected);
  }

  /** Attaches a callback for the failure, as `Promise.prototype.catch` does. */
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.#result.catch(onrejected);
  }

  /** Attaches a callback run when the work settles, as `Promise.prototype.finally` does. */
  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.#result.finally(onfinally);
  }

  /**
   * Returns an iterator over every progress event, starting from the first one ever emitted. It
   * ends when the work ends and throws the work's error if it failed. Asking for an iterator counts
   * as handling a failure (see the class documentation).
   */
  [Symbol.asyncIterator](): AsyncIterator<P> {
    this.#result.catch(() => {}); // the iterator reports the failure instead
    return this.#iterate();
  }

  /** `"Operation"`, for `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return 'Operation';
  }

  async *#iterate(): AsyncGenerator<P, void, undefined> {
    let next = 0;
    for (;;) {
      while (next < this.#events.length) yield this.#events[next++] as P;
      const outcome = this.#outcome;
      if (outcome) {
        if (!outcome.ok) throw outcome.error;
        return;
      }
      await this.#nextChange();
    }
  }

  #nextChange(): Promise<void> {
    this.#changed ??= new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    return this.#changed;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    this.#changed = undefined;
    wake?.();
  }

  #settle(outcome: Outcome): void {
    this.#outcome = outcome;
    this.#notify();
  }
}
