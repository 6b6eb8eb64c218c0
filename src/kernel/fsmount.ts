/**
 * The new mount API: `fsopen(2)`, `fsconfig(2)` and `fsmount(2)`. They build a mount that is
 * attached nowhere: it is reached only through the returned fd and vanishes when the fd is
 * closed.
 *
 * @module
 */
import { libc, check } from './libc.js';

const _syscall = libc.func('long syscall(long number, ...)');

/** <asm-generic/unistd.h>: the same numbers on every architecture. */
const NR_FSOPEN = 430;
const NR_FSCONFIG = 431;
const NR_FSMOUNT = 432;

/** <linux/mount.h>: fsopen flag: close on exec. */
export const FSOPEN_CLOEXEC = 0x1;
/** <linux/mount.h>: fsmount flag: close on exec. */
export const FSMOUNT_CLOEXEC = 0x1;
/** <linux/mount.h>: fsconfig command: set a flag parameter. */
export const FSCONFIG_SET_FLAG = 0;
/** <linux/mount.h>: fsconfig command: set a string parameter. */
export const FSCONFIG_SET_STRING = 1;
/** <linux/mount.h>: fsconfig command: create the superblock. */
export const FSCONFIG_CMD_CREATE = 6;

/** `fsopen(2)`: a file-system context for `fsName`; returns its fd. */
export function fsopen(fsName: string, flags: number): number {
  return check('fsopen', () => Number(_syscall(NR_FSOPEN, 'const char *', fsName, 'unsigned int', flags)), fsName);
}

/** `fsconfig(2)`: sets parameter `key` (string `value`, or a flag when `value` is null), or runs a command. */
export function fsconfig(fd: number, cmd: number, key: string | null, value: string | null, aux = 0): void {
  check(
    'fsconfig',
    () =>
      Number(
        _syscall(NR_FSCONFIG, 'int', fd, 'unsigned int', cmd, 'const char *', key, 'const char *', value, 'int', aux),
      ),
    key ?? `cmd ${cmd}`,
    value ?? undefined,
  );
}

/** `fsmount(2)`: a detached mount of a configured context; returns its fd (the mount's root). */
export function fsmount(fd: number, flags: number, attrFlags: number): number {
  return check('fsmount', () =>
    Number(_syscall(NR_FSMOUNT, 'int', fd, 'unsigned int', flags, 'unsigned int', attrFlags)),
  );
}
