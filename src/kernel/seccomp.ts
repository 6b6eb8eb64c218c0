/**
 * `seccomp(2)`: installs a classic BPF filter on the calling thread's system calls.
 *
 * @module
 */
import koffi from 'koffi';
import { libc, check } from './libc.js';
import { SYS } from './syscall-numbers.js';
import { BerthError } from '../errors.js';

const _syscall = libc.func('long syscall(long number, ...)');
// struct sock_fprog { unsigned short len; struct sock_filter *filter; } (anonymous: loading this module twice stays legal).
const SockFprog = koffi.struct({ len: 'uint16_t', filter: 'void *' });
const SockFprogPtr = koffi.pointer(SockFprog);

/** <linux/seccomp.h>: install a filter program. */
export const SECCOMP_SET_MODE_FILTER = 1;

/** The size of one `struct sock_filter` (code u16, jt u8, jf u8, k u32). */
export const SOCK_FILTER_SIZE = 8;

/**
 * `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`: from now on every system call of this thread
 * (and of the processes it starts) runs through `program`, an array of `struct sock_filter` in
 * the machine's byte order. Needs no_new_privs or CAP_SYS_ADMIN. Synchronous: it acts on the
 * calling thread.
 */
export function seccompSetFilter(program: Buffer, flags = 0): void {
  if (program.length === 0 || program.length % SOCK_FILTER_SIZE !== 0)
    throw new BerthError(
      'INVALID_ARGUMENT',
      `a seccomp program is a non-empty array of ${SOCK_FILTER_SIZE}-byte instructions`,
    );
  const fprog = { len: program.length / SOCK_FILTER_SIZE, filter: program };
  check(
    'seccomp',
    () => Number(_syscall(SYS.seccomp, 'int', SECCOMP_SET_MODE_FILTER, 'unsigned int', flags, SockFprogPtr, fprog)),
    'SECCOMP_SET_MODE_FILTER',
  );
}
