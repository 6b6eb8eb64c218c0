/**
 * The container's own mounts and the masked and read-only paths, as the JavaScript init makes
 * them (see `runInit` in `init.ts`).
 *
 * @module
 */
import * as K from '../kernel/constants.js';
import { MOUNT_ATTR_RDONLY } from '../kernel/mount.js';
import { sys } from './init-sys.js';
import type { UserMount } from './plan.js';

const PROPAGATION: Record<string, number> = {
  private: K.MS_PRIVATE,
  rprivate: K.MS_PRIVATE | K.MS_REC,
  shared: K.MS_SHARED,
  rshared: K.MS_SHARED | K.MS_REC,
  slave: K.MS_SLAVE,
  rslave: K.MS_SLAVE | K.MS_REC,
};

/** Clones a bind source (recursively) as a detached mount, read-only when asked, before the pivot. */
export function cloneSource(m: Extract<UserMount, { kind: 'bind' }>): number {
  const fd = sys.openTree(K.AT_FDCWD, m.source, K.OPEN_TREE_CLONE | K.OPEN_TREE_CLOEXEC | K.AT_RECURSIVE);
  // A volume to fill is made read-only once filled (attachUserMount).
  if (m.readOnly && !m.copyUp) sys.mountSetattr(fd, '', K.AT_EMPTY_PATH | K.AT_RECURSIVE, MOUNT_ATTR_RDONLY);
  return fd;
}

/** Attaches one of the container's own mounts at its target, inside the new root. */
export function attachUserMount(m: UserMount, fd: number): void {
  if (m.kind === 'tmpfs') {
    sys.mkdirAll(m.target, 0o755);
    sys.mount('tmpfs', m.target, 'tmpfs', K.MS_NOSUID | K.MS_NODEV | (m.readOnly ? K.MS_RDONLY : 0), m.data);
    return;
  }
  ensureMountTarget(m.target, m.dir);
  // The image's content under the target, kept reachable through an fd once the volume covers it.
  const below = m.copyUp ? sys.open(m.target, K.O_RDONLY | K.O_DIRECTORY | K.O_CLOEXEC) : -1;
  // Inside the new root a symlinked target resolves inside the container, as runc's securejoin.
  sys.moveMount(fd, '', K.AT_FDCWD, m.target, K.MOVE_MOUNT_F_EMPTY_PATH | K.MOVE_MOUNT_T_SYMLINKS);
  sys.close(fd);
  if (below >= 0) {
    sys.copyUp(`/proc/self/fd/${below}`, m.target);
    sys.close(below);
    if (m.readOnly) {
      const top = sys.open(m.target, K.O_RDONLY | K.O_DIRECTORY | K.O_CLOEXEC);
      sys.mountSetattr(top, '', K.AT_EMPTY_PATH | K.AT_RECURSIVE, MOUNT_ATTR_RDONLY);
      sys.close(top);
    }
  }
  const prop = PROPAGATION[m.propagation];
  if (prop !== undefined && m.propagation !== 'rprivate') sys.mount(null, m.target, null, prop, null);
}

/** Creates a missing mount target: a directory, or an empty file for file binds. */
export function ensureMountTarget(target: string, dir: boolean): void {
  if (sys.exists(target)) return;
  const parent = target.slice(0, target.lastIndexOf('/')) || '/';
  sys.mkdirAll(parent, 0o755);
  if (dir) sys.mkdir(target, 0o755, true);
  else sys.close(sys.open(target, K.O_WRONLY | K.O_CREAT | K.O_CLOEXEC, 0o644));
}

/** Hides `path`: an empty read-only tmpfs on a directory, /dev/null on a file; nothing when missing. */
export function maskPath(path: string): void {
  if (!sys.exists(path)) return;
  // Decide by type up front: a failed mount would cost an exception (a stack trace) here.
  if (sys.isDirectory(path)) sys.mount('tmpfs', path, 'tmpfs', K.MS_RDONLY, 'size=0');
  else sys.mount('/dev/null', path, null, K.MS_BIND, null);
}

/** Makes `path` (and what is mounted below it) read-only; nothing when missing. */
export function readonlyPath(path: string): void {
  if (!sys.exists(path)) return;
  sys.mount(path, path, null, K.MS_BIND | K.MS_REC, null);
  sys.mount(null, path, null, K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY | K.MS_NOSUID | K.MS_NODEV | K.MS_NOEXEC, null);
}
