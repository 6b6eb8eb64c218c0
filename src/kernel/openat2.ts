/**
 * `openat2(2)`: opens a path relative to a directory fd with resolution restrictions, as crun's
 * `safe_openat` does. With {@link RESOLVE_IN_ROOT} the directory acts as the root for the whole
 * walk: absolute symlinks and `..` stay inside it.
 *
 * @module
 */
import { libc, check } from './libc.js';
import { SYS } from './syscall-numbers.js';

const _syscall = libc.func('long syscall(long number, ...)');

/** <linux/openat2.h>: do not cross mount points. */
export const RESOLVE_NO_XDEV = 0x01;
/** <linux/openat2.h>: do not follow magic links (`/proc/<pid>/fd/*`, `/proc/<pid>/root`). */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** <linux/openat2.h>: do not follow any symlink. */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** <linux/openat2.h>: fail when the walk would leave the directory. */
export const RESOLVE_BENEATH = 0x08;
/** <linux/openat2.h>: treat the directory as the root (`/` and `..` stay inside it). */
export const RESOLVE_IN_ROOT = 0x10;

/**
 * `openat2(2)`: opens `path` relative to `dirfd` with open `flags`, `mode` and `resolve`
 * restrictions; returns the new fd. Synchronous.
 */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return check(
    'openat2',
    () => Number(_syscall(SYS.openat2, 'int', dirfd, 'const char *', path, 'void *', how, 'size_t', 24)),
    path,
    path,
  );
}
