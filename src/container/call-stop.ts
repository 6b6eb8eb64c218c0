/**
 * The `{ signal, timeout }` a long call takes, as one `AbortSignal` for the work and one check
 * that turns a stop into the call's typed error: `ABORTED` (the caller's signal; its reason is the
 * cause) or `TIMEOUT`.
 *
 * @module
 */
import { z } from 'zod';
import { AbortedError, TimeoutError } from '../errors.js';

/** The longest `timeout` a timer can wait (2³¹−1 ms, about 24.8 days): a longer one would fire at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The zod fields of a long call's `{ signal, timeout }`: spread them into its options schema. */
export const stopShape = {
  signal: z.instanceof(AbortSignal).optional(),
  timeout: z.number().int().positive().max(MAX_TIMEOUT_MS).optional(),
};

/** A long call's `{ signal, timeout }`, validated by {@link stopShape}. */
export interface StopOptions {
  /** Cancels the call: it undoes what it started and rejects with `ABORTED` (the signal's reason as cause). */
  signal?: AbortSignal | undefined;
  /** Cancels the call after this many milliseconds: it undoes what it started and rejects with `TIMEOUT`. */
  timeout?: number | undefined;
}

/** A call's stop conditions, combined. */
export interface CallStop {
  /** Fires when the caller's signal fires or the timeout passes; undefined when neither was given. */
  readonly signal: AbortSignal | undefined;
  /** Throws the call's error when it was stopped; `what` names the call in the message. */
  throwIfStopped(what: string, cause?: unknown): void;
}

/** Combines a caller's `signal` and `timeout` (ms) for one call. */
export function callStop(signal: AbortSignal | undefined, timeout: number | undefined): CallStop {
  const timer = timeout === undefined ? undefined : AbortSignal.timeout(timeout);
  const all = [signal, timer].filter((x): x is AbortSignal => x !== undefined);
  return {
    signal: all.length === 0 ? undefined : all.length === 1 ? all[0] : AbortSignal.any(all),
    throwIfStopped(what, cause) {
      if (signal?.aborted) throw new AbortedError(`${what} was cancelled`, signal.reason);
      if (timer?.aborted)
        throw new TimeoutError(`${what} did not end within ${timeout} ms`, cause === undefined ? {} : { cause });
    },
  };
}

/** Waits `ms`, or less when `signal` fires first (never rejects). */
export function sleepUnless(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `work` under a call's {@link StopOptions}: an already-stopped call rejects before `work`
 * starts; a failure of `work` once the call was stopped becomes the call's `ABORTED` or `TIMEOUT`
 * (see {@link CallStop.throwIfStopped}). `work` receives the combined signal and must undo what it
 * started when it fires; a `work` that completes anyway resolves.
 */
export async function underStop<T>(
  what: string,
  options: StopOptions,
  work: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const stop = callStop(options.signal, options.timeout);
  stop.throwIfStopped(what);
  try {
    return await work(stop.signal);
  } catch (e) {
    stop.throwIfStopped(what, e);
    throw e;
  }
}

/**
 * {@link underStop} for the work of an `Operation`: its own signal (fired by `op.abort()`) counts
 * as the caller's, so either gives `ABORTED`; `work` always receives a signal.
 */
export function underOperationStop<T>(
  what: string,
  operationSignal: AbortSignal,
  options: StopOptions,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const signal = options.signal === undefined ? operationSignal : AbortSignal.any([operationSignal, options.signal]);
  return underStop(what, { signal, timeout: options.timeout }, (s) => work(s ?? signal));
}
