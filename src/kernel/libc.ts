/**
 * The one place that loads libc through koffi, reads `errno` and turns failures into
 * {@link KernelError}s. Every binding in `src/kernel` is built on {@link check}.
 *
 * Calls are synchronous on purpose: unshare, setns, capset, prctl and seccomp act on the
 * calling thread, and koffi's `.async` variant would run them on another one.
 *
 * @module
 */
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { KernelError } from '../errors.js';

/** libc, loaded once per process. */
export const libc = koffi.load('libc.so.6');

const errnoNames: Record<number, string> = {};
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!(value in errnoNames)) errnoNames[value] = name;
}

/** The symbolic name of an errno value, e.g. `ENOENT` for 2. */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `E${errno}`;
}

/** The errno of the last koffi call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/** EINTR: the call was interrupted by a signal and is retried. */
export const EINTR = 4;

/**
 * Runs `call` until it does not fail with EINTR; throws a {@link KernelError} when it returns a
 * negative value. Returns the call's result otherwise.
 */
export function check<T extends number | bigint>(syscall: string, call: () => T, detail?: string, path?: string): T {
  for (;;) {
    const r = call();
    if (r >= 0) return r;
    const errno = koffi.errno();
    if (errno === EINTR) continue;
    throw new KernelError(syscall, errno, errnoName(errno), detail, path);
  }
}

/** Throws a {@link KernelError} for `errno` (used when a call reports errors in its return value). */
export function fail(syscall: string, errno: number, detail?: string, path?: string): never {
  throw new KernelError(syscall, errno, errnoName(errno), detail, path);
}
