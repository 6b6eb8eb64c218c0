/**
 * The `{ signal, timeout }` a long call takes, as one `AbortSignal` for the work and one check
 * that turns a stop into the call's typed error: `ABORTED` (the caller's signal; its reason is the
 * cause) or `TIMEOUT`.
 *
 * @module
 */
import { AbortedError, TimeoutError } from '../errors.js';

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
