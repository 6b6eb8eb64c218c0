/**
 * Extended attributes (`lsetxattr(2)`, `fsetxattr(2)`, `lgetxattr(2)`, `llistxattr(2)`), never
 * following a trailing symlink. Used to write layer xattrs (`SCHILY.xattr.*`) and overlayfs markers
 * (`trusted.overlay.opaque`).
 *
 * @module
 */
import { libc, check, lastErrno, fail, EINTR } from './libc.js';

const _lsetxattr = libc.func(
  'int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)',
);
const _fsetxattr = libc.func('int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)');
const _lgetxattr = libc.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)');
const _llistxattr = libc.func('long llistxattr(const char *path, _Out_ void *list, size_t size)');

/** `ENODATA` (<errno.h>): the attribute does not exist. */
const ENODATA = 61;
/** `ERANGE` (<errno.h>): the buffer was too small (the attribute grew meanwhile). */
const ERANGE = 34;

/** `XATTR_CREATE` (<sys/xattr.h>): fail if the attribute exists. */
export const XATTR_CREATE = 1;
/** `XATTR_REPLACE` (<sys/xattr.h>): fail if the attribute does not exist. */
export const XATTR_REPLACE = 2;

/**
 * A path as libc wants it: strings are passed as UTF-8 by koffi; raw byte paths (for names that
 * are not UTF-8) get their NUL terminator here.
 */
function cPath(path: string | Uint8Array): string | Buffer {
  return typeof path === 'string' ? path : Buffer.concat([path, Buffer.alloc(1)]);
}

function show(path: string | Uint8Array): string {
  return typeof path === 'string' ? path : Buffer.from(path).toString('utf8');
}

/**
 * `lsetxattr(2)`: sets attribute `name` of `path` (not following a trailing symlink). `path` may
 * be raw bytes for names that are not UTF-8.
 */
export function lsetxattr(path: string | Uint8Array, name: string, value: Uint8Array, flags = 0): void {
  const p = cPath(path);
  check('lsetxattr', () => _lsetxattr(p, name, value, value.byteLength, flags), `${show(path)}, ${name}`, show(path));
}

/** `fsetxattr(2)`: sets attribute `name` of the file open as `fd`. */
export function fsetxattr(fd: number, name: string, value: Uint8Array, flags = 0): void {
  check('fsetxattr', () => _fsetxattr(fd, name, value, value.byteLength, flags), `fd=${fd}, ${name}`);
}

/** `lgetxattr(2)`: the value of attribute `name` of `path`, or `undefined` when it is not set. */
export function lgetxattr(path: string | Uint8Array, name: string): Buffer | undefined {
  const p = cPath(path);
  for (;;) {
    const size = Number(_lgetxattr(p, name, null, 0));
    if (size >= 0) {
      const buf = Buffer.alloc(size);
      const n = Number(_lgetxattr(p, name, buf, size));
      if (n >= 0) return buf.subarray(0, n);
    }
    const errno = lastErrno();
    if (errno === ENODATA) return undefined;
    if (errno !== ERANGE && errno !== EINTR) fail('lgetxattr', errno, `${show(path)}, ${name}`, show(path));
  }
}

/** `llistxattr(2)`: the names of every attribute of `path`. */
export function llistxattr(path: string | Uint8Array): string[] {
  const p = cPath(path);
  for (;;) {
    const size = Number(check('llistxattr', () => Number(_llistxattr(p, null, 0)), show(path), show(path)));
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const n = Number(_llistxattr(p, buf, size));
    if (n >= 0) return buf.subarray(0, n).toString('utf8').split('\0').filter(Boolean);
    const errno = lastErrno();
    if (errno !== ERANGE && errno !== EINTR) fail('llistxattr', errno, show(path), show(path));
  }
}
