/**
 * Kernel key management (keyrings(7)): the raw `add_key(2)` and `keyctl(2)` calls, which glibc
 * does not wrap. Keyrings belong to the calling thread's credentials: call these on the thread
 * whose keyrings are meant.
 *
 * @module
 */
import { libc, check } from './libc.js';
import { SYS } from './syscall-numbers.js';
import { KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_SEARCH, KEYCTL_UNLINK } from './constants.js';

const _syscall = libc.func('long syscall(long number, ...)');

/**
 * `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`: gives the calling thread a new, anonymous session
 * keyring (what its children inherit from then on), and returns its serial number. The keyring
 * it had before is no longer reachable through `@s`.
 */
export function joinSessionKeyring(): number {
  return check(
    'keyctl',
    () => Number(_syscall(SYS.keyctl, 'int', KEYCTL_JOIN_SESSION_KEYRING, 'void *', null)),
    'KEYCTL_JOIN_SESSION_KEYRING',
  );
}

/** `add_key(2)`: adds (or updates) a key of `type` in `keyring`; returns its serial number. */
export function addKey(type: string, description: string, payload: Buffer, keyring: number): number {
  return check(
    'add_key',
    () =>
      Number(
        _syscall(
          SYS.add_key,
          'str',
          type,
          'str',
          description,
          'void *',
          payload,
          'size_t',
          payload.length,
          'int',
          keyring,
        ),
      ),
    description,
  );
}

/** `keyctl(KEYCTL_SEARCH)`: the serial number of a key of `type` and `description` in the tree of `keyring` (ENOKEY when none). */
export function searchKey(keyring: number, type: string, description: string): number {
  return check(
    'keyctl',
    () => Number(_syscall(SYS.keyctl, 'int', KEYCTL_SEARCH, 'int', keyring, 'str', type, 'str', description, 'int', 0)),
    `KEYCTL_SEARCH ${description}`,
  );
}

/** `keyctl(KEYCTL_UNLINK)`: removes `key` from `keyring` (a key no keyring holds is then destroyed). */
export function unlinkKey(key: number, keyring: number): void {
  check(
    'keyctl',
    () => Number(_syscall(SYS.keyctl, 'int', KEYCTL_UNLINK, 'int', key, 'int', keyring)),
    'KEYCTL_UNLINK',
  );
}
