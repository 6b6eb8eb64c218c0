/**
 * Docker's volume copy-up: the image's content at a mount target is copied into a new, empty
 * volume the first time it is mounted there. Runs in the init, inside the container's root,
 * synchronously; owners, modes, symlinks and times are kept. Symlinks are copied as links,
 * never followed.
 *
 * @module
 */
import {
  chmodSync, closeSync, copyFileSync, fchmodSync, fchownSync, fstatSync, futimesSync, lchownSync, lstatSync, lutimesSync, mkdirSync,
  constants, openSync, readdirSync, readlinkSync, statSync, symlinkSync, type Stats,
} from 'node:fs';

/**
 * Copies the tree under `from` into the existing directory `to`, then gives `to` the owner and
 * mode of `from`, as Docker's copy-up does: a data directory the image made for its own user
 * (a database's, say) stays that user's in the new volume.
 */
export function copyUp(from: string, to: string): void {
  copyTree(from, to);
  // `from` may be a /proc/self/fd link to the directory: followed, as readdir does.
  const st = statSync(from);
  lchownSync(to, st.uid, st.gid);
  chmodSync(to, st.mode & 0o7777);
}

/** A directory: its device and inode. */
interface DirId {
  dev: bigint;
  ino: bigint;
}

/** A directory the walk is in: its listing, how far it got, and its fds (-1 while below it). */
interface Level {
  names: string[];
  next: number;
  from: number;
  to: number;
  fromId: DirId;
  toId: DirId;
  /** The image directory's own stat: the copy's owner, mode and times once its content is in. */
  st: Stats | undefined;
}

// Node's own values: O_DIRECTORY and O_NOFOLLOW differ between architectures. Node opens with O_CLOEXEC.
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

const at = (fd: number, name: string): string => `/proc/self/fd/${fd}/${name}`;

function idOf(fd: number): DirId {
  const st = fstatSync(fd, { bigint: true });
  return { dev: st.dev, ino: st.ino };
}

function openLevel(from: number, to: number, st: Stats | undefined): Level {
  return { names: readdirSync(`/proc/self/fd/${from}`), next: 0, from, to, fromId: idOf(from), toId: idOf(to), st };
}

/**
 * The directory above `fd`, opened through "..", checked to be `want`: one that was moved
 * meanwhile (by another container sharing the volume, say) fails the start, rather than having
 * the copy go on somewhere else.
 */
function parentOf(fd: number, want: DirId): number {
  const up = openSync(at(fd, '..'), DIR_FLAGS);
  const got = idOf(up);
  if (got.dev !== want.dev || got.ino !== want.ino) {
    closeSync(up);
    throw new Error('copy-up: a directory was moved while it was copied');
  }
  return up;
}

/**
 * Copies the tree under `from` into the existing directory `to`, as berth-init's copy_tree
 * (`monitor/init.c`) does: any depth is copied whole, with no recursion and a fixed number of
 * fds. The walk goes down and up one directory at a time, every name taken relative to an fd of
 * its directory (`/proc/self/fd/N/name`, so no path grows with the depth); only the current
 * directory's fds and the top's are open. Coming back up, it reopens the parent through ".."
 * (checked to be the same directory); the top's fds stay open, since the volume now covers the
 * image's directory and ".." from a first-level directory would land on the volume. As there,
 * time grows with depth² past a few thousand levels (the kernel's check of ".." in a bind mount).
 */
export function copyTree(from: string, to: string): void {
  const topFrom = openSync(from, O_RDONLY | O_DIRECTORY);
  let topTo = -1;
  const levels: Level[] = [];
  let cur: Level | undefined;
  try {
    topTo = openSync(to, O_RDONLY | O_DIRECTORY);
    cur = openLevel(topFrom, topTo, undefined);
    for (;;) {
      if (cur.next === cur.names.length) {
        const parent = levels.pop();
        if (parent === undefined) return;
        const st = cur.st!;
        fchownSync(cur.to, st.uid, st.gid);
        fchmodSync(cur.to, st.mode & 0o7777);
        futimesSync(cur.to, st.atime, st.mtime);
        if (levels.length > 0) {
          const upFrom = parentOf(cur.from, parent.fromId);
          try {
            parent.to = parentOf(cur.to, parent.toId);
          } catch (e) {
            closeSync(upFrom);
            throw e;
          }
          parent.from = upFrom;
        }
        closeSync(cur.from);
        closeSync(cur.to);
        cur = parent;
        continue;
      }
      const name = cur.names[cur.next++]!;
      const src = at(cur.from, name);
      const dst = at(cur.to, name);
      const st = lstatSync(src);
      if (st.isDirectory()) {
        mkdirSync(dst, { mode: st.mode & 0o7777 });
        const a = openSync(src, DIR_FLAGS);
        let b = -1;
        try {
          b = openSync(dst, DIR_FLAGS);
          const child = openLevel(a, b, st);
          if (levels.length > 0) {
            closeSync(cur.from);
            closeSync(cur.to);
            cur.from = cur.to = -1;
          }
          levels.push(cur);
          cur = child;
        } catch (e) {
          closeSync(a);
          if (b >= 0) closeSync(b);
          throw e;
        }
        continue;
      }
      if (st.isSymbolicLink()) {
        symlinkSync(readlinkSync(src), dst);
      } else if (st.isFile()) {
        copyFileSync(src, dst);
      } else {
        continue; // Devices, fifos and sockets are not copied, as Docker does not.
      }
      lchownSync(dst, st.uid, st.gid);
      if (!st.isSymbolicLink()) chmodSync(dst, st.mode & 0o7777);
      lutimesSync(dst, st.atime, st.mtime);
    }
  } finally {
    // Below the top, only the current directory's fds are open (its ancestors' are -1).
    if (cur !== undefined && cur.from !== topFrom) {
      closeSync(cur.from);
      closeSync(cur.to);
    }
    if (topTo >= 0) closeSync(topTo);
    closeSync(topFrom);
  }
}
