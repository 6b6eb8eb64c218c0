/**
 * Mount bindings: mount(2), umount2(2), pivot_root(2), open_tree(2) and move_mount(2).
 *
 * @module
 */
import { libc, check } from './libc.js';
import { SYS } from './syscall-numbers.js';

const _mount = libc.func(
  'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
);
const _umount2 = libc.func('int umount2(const char *target, int flags)');
const _syscall = libc.func('long syscall(long number, ...)');

/** `mount(2)`. `source`, `fstype` and `data` may be null. */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
): void {
  check(
    'mount',
    () => _mount(source, target, fstype, flags, data),
    `${source ?? 'none'} on ${target}${fstype ? ` type ${fstype}` : ''}`,
    target,
  );
}

/** `umount2(2)`. */
export function umount2(target: string, flags: number): void {
  check('umount2', () => _umount2(target, flags), undefined, target);
}

/** `pivot_root(2)`: makes `newRoot` the root mount; the old root is moved to `putOld`. */
export function pivotRoot(newRoot: string, putOld: string): void {
  check(
    'pivot_root',
    () => Number(_syscall(SYS.pivot_root, 'const char *', newRoot, 'const char *', putOld)),
    `${newRoot}, ${putOld}`,
    newRoot,
  );
}

/** `open_tree(2)`: with OPEN_TREE_CLONE, a detached copy of the mount at `path`, as an fd. */
export function openTree(dirfd: number, path: string, flags: number): number {
  return check(
    'open_tree',
    () => Number(_syscall(SYS.open_tree, 'int', dirfd, 'const char *', path, 'unsigned int', flags)),
    path,
    path,
  );
}

/** `move_mount(2)`: attaches (or moves) a mount. */
export function moveMount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): void {
  check(
    'move_mount',
    () =>
      Number(
        _syscall(
          SYS.move_mount,
          'int',
          fromDirfd,
          'const char *',
          fromPath,
          'int',
          toDirfd,
          'const char *',
          toPath,
          'unsigned int',
          flags,
        ),
      ),
    `to ${toPath}`,
    toPath,
  );
}

/** <linux/mount.h>: mount_setattr attribute: read-only. */
export const MOUNT_ATTR_RDONLY = 0x1;

/**
 * `mount_setattr(2)`: sets (and clears) mount attributes, optionally on a whole tree
 * (AT_RECURSIVE) — also on a detached tree from open_tree(2), before it is attached.
 */
export function mountSetattr(dirfd: number, path: string, flags: number, attrSet: number, attrClr = 0): void {
  const attr = Buffer.alloc(32);
  attr.writeBigUInt64LE(BigInt(attrSet), 0);
  attr.writeBigUInt64LE(BigInt(attrClr), 8);
  check(
    'mount_setattr',
    () =>
      Number(
        _syscall(
          SYS.mount_setattr,
          'int',
          dirfd,
          'const char *',
          path,
          'unsigned int',
          flags,
          'void *',
          attr,
          'size_t',
          32,
        ),
      ),
    path,
    path,
  );
}
