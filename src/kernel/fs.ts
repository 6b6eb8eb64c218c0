/**
 * File-system bindings the container init needs where Node's `fs` cannot be used (a forked
 * child must stay off libuv): mkdir, mknod, symlink, chmod, chown, and `makedev`.
 *
 * @module
 */
import { libc, check, lastErrno } from './libc.js';

const _mkdir = libc.func('int mkdir(const char *path, uint32_t mode)');
const _mknod = libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
const _symlink = libc.func('int symlink(const char *target, const char *linkpath)');
const _chmod = libc.func('int chmod(const char *path, uint32_t mode)');
const _lchown = libc.func('int lchown(const char *path, uint32_t owner, uint32_t group)');
const _fchown = libc.func('int fchown(int fd, uint32_t owner, uint32_t group)');
const _access = libc.func('int access(const char *path, int mode)');

/** EEXIST. */
const EEXIST = 17;

/** `makedev(3)`: a device number from major and minor. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** `mkdir(2)`. With `existOk`, an existing entry is not an error. */
export function mkdir(path: string, mode: number, existOk = false): void {
  if (_mkdir(path, mode) === 0) return;
  if (existOk && lastErrno() === EEXIST) return;
  check('mkdir', () => -1, path, path);
}

/** `mkdir -p`: creates every missing directory along an absolute `path`. */
export function mkdirAll(path: string, mode: number): void {
  let cur = '';
  for (const part of path.split('/')) {
    if (!part) continue;
    cur += `/${part}`;
    mkdir(cur, mode, true);
  }
}

/** `mknod(2)`. */
export function mknod(path: string, mode: number, dev: bigint): void {
  check('mknod', () => _mknod(path, mode, dev), path, path);
}

/** `symlink(2)`: creates `linkpath` pointing at `target`. */
export function symlink(target: string, linkpath: string): void {
  check('symlink', () => _symlink(target, linkpath), `${linkpath} -> ${target}`, linkpath);
}

/** `chmod(2)`. */
export function chmod(path: string, mode: number): void {
  check('chmod', () => _chmod(path, mode), path, path);
}

/** `fchown(2)`. */
export function fchown(fd: number, uid: number, gid: number): void {
  check('fchown', () => _fchown(fd, uid, gid), `fd=${fd}`);
}

/** `lchown(2)`. */
export function lchown(path: string, uid: number, gid: number): void {
  check('lchown', () => _lchown(path, uid, gid), path, path);
}

/** `access(2)` with F_OK: whether `path` exists (following symlinks). */
export function exists(path: string): boolean {
  return _access(path, 0) === 0;
}

const _renameat2 = libc.func(
  'int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, uint32_t flags)',
);

/** `RENAME_NOREPLACE` (from <linux/fs.h>): fail with EEXIST rather than replace the new path. */
export const RENAME_NOREPLACE = 1;

/**
 * `renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)`. Throws a `KernelError` (EEXIST with
 * {@link RENAME_NOREPLACE} when `to` exists; EINVAL where the file system does not support a flag).
 */
export function renameat2(from: string, to: string, flags: number): void {
  check('renameat2', () => _renameat2(-100, from, -100, to, flags), `${from} -> ${to}`, to);
}
