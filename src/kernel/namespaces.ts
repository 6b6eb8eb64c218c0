/**
 * Namespace bindings: unshare(2), setns(2), sethostname(2), setdomainname(2).
 *
 * unshare and setns act on the calling thread only; they are called synchronously on it.
 *
 * @module
 */
import { libc, check } from './libc.js';

const _unshare = libc.func('int unshare(int flags)');
const _setns = libc.func('int setns(int fd, int nstype)');
const _sethostname = libc.func('int sethostname(const char *name, size_t len)');
const _setdomainname = libc.func('int setdomainname(const char *name, size_t len)');

/** `unshare(2)` on the calling thread. */
export function unshare(flags: number): void {
  check('unshare', () => _unshare(flags), `0x${flags.toString(16)}`);
}

/** `setns(2)` on the calling thread: enter the namespace `fd` refers to. */
export function setns(fd: number, nstype: number): void {
  check('setns', () => _setns(fd, nstype), `fd=${fd}, 0x${nstype.toString(16)}`);
}

/** `sethostname(2)` in the caller's UTS namespace. */
export function sethostname(name: string): void {
  check('sethostname', () => _sethostname(name, Buffer.byteLength(name)), name);
}

/** `setdomainname(2)` in the caller's UTS namespace. */
export function setdomainname(name: string): void {
  check('setdomainname', () => _setdomainname(name, Buffer.byteLength(name)), name);
}
