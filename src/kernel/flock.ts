/**
 * Advisory whole-file locks (`flock(2)`), the primitive behind berth's cross-process state lock.
 *
 * @module
 */
import { libc, check, lastErrno, errnoName } from './libc.js';
import { KernelError } from '../errors.js';

const _flock = libc.func('int flock(int fd, int operation)');

/** Shared lock (`LOCK_SH`, from <sys/file.h>). */
export const LOCK_SH = 1;
/** Exclusive lock (`LOCK_EX`, from <sys/file.h>). */
export const LOCK_EX = 2;
/** Do not block (`LOCK_NB`, from <sys/file.h>). */
export const LOCK_NB = 4;
/** Unlock (`LOCK_UN`, from <sys/file.h>). */
export const LOCK_UN = 8;

/**
 * `flock(fd, operation)`. Blocks the calling thread until the lock is granted unless
 * `LOCK_NB` is set. Retries on EINTR.
 */
export function flock(fd: number, operation: number): void {
  check('flock', () => _flock(fd, operation), `fd=${fd}, op=${operation}`);
}

/**
 * `flock(fd, operation | LOCK_NB)`: returns false instead of blocking when another open file
 * description holds a conflicting lock (EWOULDBLOCK).
 */
export function tryFlock(fd: number, operation: number): boolean {
  for (;;) {
    if (_flock(fd, operation | LOCK_NB) === 0) return true;
    const errno = lastErrno();
    if (errno === 4) continue;
    if (errno === 11) return false;
    throw new KernelError('flock', errno, errnoName(errno), `fd=${fd}, op=${operation}|LOCK_NB`);
  }
}
