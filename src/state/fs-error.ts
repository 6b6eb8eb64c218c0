/**
 * Turns the errors of Node's `fs` module into berth errors, so that the state layer only ever
 * throws {@link BerthError} subclasses.
 *
 * @module
 */
import { readdirSync } from 'node:fs';
import { BerthError, KernelError, asBerthError } from '../errors.js';

/** The `code` of a Node system error (`ENOENT`, `EEXIST`, …), or undefined for anything else. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** True when `e` is a Node system error with the given errno name, e.g. `isErrno(e, 'ENOENT')`. */
export function isErrno(e: unknown, code: string): boolean {
  return errnoCode(e) === code;
}

/**
 * Wraps a failure of an `fs` call into a {@link KernelError} naming the call and the path
 * (`PERMISSION_DENIED` for EACCES/EPERM, `KERNEL` otherwise). Berth errors pass through unchanged.
 *
 * @param e - what was thrown
 * @param syscall - the call to name when `e` does not say (e.g. `rename`)
 * @param path - the path to name when `e` does not say
 */
export function fsError(e: unknown, syscall: string, path?: string): BerthError {
  if (e instanceof BerthError) return e;
  const err = e as NodeJS.ErrnoException | undefined;
  const code = errnoCode(e);
  if (code !== undefined && code.startsWith('E')) {
    const errno = typeof err?.errno === 'number' ? Math.abs(err.errno) : 0;
    return new KernelError(err?.syscall ?? syscall, errno, code, undefined, err?.path ?? path, { cause: e });
  }
  return asBerthError(e, `${syscall}${path === undefined ? '' : ` ${path}`}`);
}

/**
 * True when `e` says the file system is full: a berth error with code `NO_SPACE`, or a Node
 * system error `ENOSPC` or `EDQUOT`.
 */
export function isNoSpace(e: unknown): boolean {
  if (e instanceof BerthError) return e.code === 'NO_SPACE';
  const code = errnoCode(e);
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * The names in the directory `dir`, none when it does not exist (not made yet); any other
 * failure is thrown as {@link fsError} names it.
 */
export function readdirIfExists(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw fsError(e, 'readdir', dir);
  }
}
