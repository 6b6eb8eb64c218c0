/**
 * File-descriptor bindings: open, close, pipe2, dup2, fcntl, read, write, close_range, memfd_create.
 *
 * @module
 */
import { libc, check } from './libc.js';
import { SYS } from './syscall-numbers.js';
import { F_GETFD, F_GETFL, F_SETFD, F_SETFL, FD_CLOEXEC, O_NONBLOCK } from './constants.js';

const _open = libc.func('int open(const char *path, int flags, uint32_t mode)');
const _close = libc.func('int close(int fd)');
const _pipe2 = libc.func('int pipe2(int *fds, int flags)');
const _dup2 = libc.func('int dup2(int oldfd, int newfd)');
const _fcntl = libc.func('int fcntl(int fd, int cmd, long arg)');
const _write = libc.func('long write(int fd, const void *buf, size_t count)');
const _read = libc.func('long read(int fd, _Out_ void *buf, size_t count)');
const _syscall = libc.func('long syscall(long number, ...)');
const _memfdCreate = libc.func('int memfd_create(const char *name, unsigned int flags)');

/** `open(2)`; returns the new fd. */
export function open(path: string, flags: number, mode = 0): number {
  return check('open', () => _open(path, flags, mode), path, path);
}

/** `close(2)`. EINTR is not retried (the fd is gone either way on Linux). */
export function close(fd: number): void {
  const r = _close(fd);
  if (r < 0) check('close', () => -1, `fd=${fd}`);
}

/** `pipe2(2)`: returns `[readEnd, writeEnd]`. */
export function pipe2(flags: number): [number, number] {
  const fds = new Int32Array(2);
  check('pipe2', () => _pipe2(fds, flags));
  return [fds[0]!, fds[1]!];
}

/** `dup2(2)`; the new fd does not have FD_CLOEXEC. */
export function dup2(oldfd: number, newfd: number): void {
  check('dup2', () => _dup2(oldfd, newfd), `${oldfd} -> ${newfd}`);
}

/** `fcntl(2)` with an integer argument; returns the call's result. */
export function fcntl(fd: number, cmd: number, arg = 0): number {
  return check('fcntl', () => _fcntl(fd, cmd, arg), `fd=${fd}, cmd=${cmd}`);
}

/**
 * A close-on-exec duplicate of `fd` (`fcntl(F_DUPFD_CLOEXEC)`) numbered `min` or above, sharing
 * its open file description.
 */
export function dup(fd: number, min = 3): number {
  return fcntl(fd, 1030 /* F_DUPFD_CLOEXEC */, min);
}

/** Sets or clears O_NONBLOCK on `fd`'s open file description. */
export function setNonBlocking(fd: number, on: boolean): void {
  const fl = fcntl(fd, F_GETFL);
  const next = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
  if (next !== fl) fcntl(fd, F_SETFL, next);
}

/**
 * Clears FD_CLOEXEC and O_NONBLOCK on `fd`, so a program started by execve(2) can use it as
 * Node left it (Node marks fds 0-2 close-on-exec and may make them non-blocking).
 */
export function makeInheritable(fd: number): void {
  const fdFlags = fcntl(fd, F_GETFD);
  if (fdFlags & FD_CLOEXEC) fcntl(fd, F_SETFD, fdFlags & ~FD_CLOEXEC);
  const flFlags = fcntl(fd, F_GETFL);
  if (flFlags & O_NONBLOCK) fcntl(fd, F_SETFL, flFlags & ~O_NONBLOCK);
}

/** `write(2)` of the whole buffer (loops on short writes); returns bytes written. */
export function write(fd: number, data: Buffer | string): number {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) {
    const chunk = off === 0 ? buf : buf.subarray(off);
    off += Number(check('write', () => _write(fd, chunk, chunk.length), `fd=${fd}`));
  }
  return off;
}

/** `read(2)` into `buf`; returns the number of bytes read (0 at end of file). */
export function read(fd: number, buf: Buffer): number {
  return Number(check('read', () => _read(fd, buf, buf.length), `fd=${fd}`));
}

/** `close_range(2)` over `[first, last]` with `flags` (e.g. CLOSE_RANGE_CLOEXEC). */
export function closeRange(first: number, last: number, flags: number): void {
  check('close_range', () =>
    Number(_syscall(SYS.close_range, 'unsigned int', first, 'unsigned int', last, 'unsigned int', flags)),
  );
}

/**
 * `memfd_create(2)`: an anonymous file in memory named `name` (shown as `/memfd:<name>` in
 * `/proc/<pid>/exe` and `/proc/<pid>/fd`), with `flags` (`MFD_CLOEXEC`, `MFD_ALLOW_SEALING`).
 * Returns its fd, open for reading and writing.
 */
export function memfdCreate(name: string, flags: number): number {
  return check('memfd_create', () => _memfdCreate(name, flags), name);
}
