/**
 * Docker's volume copy-up: the image's content at a mount target is copied into a new, empty
 * volume the first time it is mounted there. Runs in the init, inside the container's root,
 * synchronously; owners, modes, symlinks and times are kept. Symlinks are copied as links,
 * never followed.
 *
 * ## Crash-safe and race-free: the protocol
 *
 * Both inits (this one and `berth-init`'s `copy_up` in `monitor/copyup.h`) follow it, on the volume
 * as the container sees it (so with `userns` everything goes through the volume's idmapped mount):
 *
 * 1. **Lock**: `flock(LOCK_EX)` on the volume's top directory. The lock belongs to the copying
 *    init itself, so it lasts exactly as long as that process does: a killed init (or one whose
 *    engine and zygote were killed) releases it only once it is dead, and the next copier can
 *    never meet a copier still at work, in this process or any other sharing the state root.
 *    Starts that need no copy never take it.
 * 2. **Recover**: a {@link COPY_UP_STAGING} directory is a dead copier's partial copy: removed.
 *    A {@link COPY_UP_COMPLETE} directory is a complete copy a dead copier did not finish moving
 *    in: moved in (step 5), and that is the copy-up.
 * 3. **Decide**: any other entry on the volume's top means it was filled already (by another
 *    container, or by a copier that finished): nothing to do.
 * 4. **Copy** into {@link COPY_UP_STAGING} (made 0700), give it the image directory's owner and
 *    mode, and rename it to {@link COPY_UP_COMPLETE}: the one atomic step that makes the copy count.
 * 5. **Move in**: every entry of {@link COPY_UP_COMPLETE} is renamed to the volume's top
 *    (`RENAME_NOREPLACE`: an entry something else put there meanwhile is kept, the copy's
 *    dropped), the top takes the copy's owner and mode, and {@link COPY_UP_COMPLETE} is removed
 *    last. A kill here is finished by the next copier (step 2).
 *
 * So a kill at any point leaves the volume without visible content and the copy still to do
 * (only berth's own dot-directories on it), or with a complete copy; never part of one. The
 * engine (`VolumeService.awaitsCopyUp`) asks an init for the copy while the volume is empty or
 * holds one of these two names. Both names are berth's on a volume's top: an image entry of the
 * same name at the top of a copied directory is not copied in.
 *
 * @module
 */
import {
  chmodSync,
  closeSync,
  copyFileSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  constants,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { cleanupAfter, ConflictError, KernelError } from '../errors.js';
import { flock, LOCK_EX } from '../kernel/flock.js';
import { renameat2, RENAME_NOREPLACE } from '../kernel/fs.js';

/** A copier's copy in progress, on the volume's top: a dead copier's is removed by the next one. */
export const COPY_UP_STAGING = '.berth-copy-up.staging';
/** A complete copy on the volume's top whose entries are being moved in: the next copier finishes it. */
export const COPY_UP_COMPLETE = '.berth-copy-up.complete';

/**
 * Copies the tree under `from` into the volume mounted at `to` if it is empty, by the protocol
 * above; then gives `to` the owner and mode of `from`, as Docker's copy-up does: a data
 * directory the image made for its own user (a database's, say) stays that user's in the new
 * volume. Does nothing (but finish a killed copier's work) when the volume was filled already.
 */
export function copyUp(from: string, to: string): void {
  const top = openSync(to, O_RDONLY | O_DIRECTORY);
  try {
    flock(top, LOCK_EX); // released by the close below, or by this process's death
    removeTree(top, COPY_UP_STAGING);
    if (!exists(at(top, COPY_UP_COMPLETE))) {
      if (readdirSync(`/proc/self/fd/${top}`).length > 0) return;
      const staging = at(top, COPY_UP_STAGING);
      mkdirSync(staging, { mode: 0o700 });
      copyTree(from, staging);
      // `from` may be a /proc/self/fd link to the directory: followed, as readdir does.
      const st = statSync(from);
      lchownSync(staging, st.uid, st.gid);
      chmodSync(staging, st.mode & 0o7777);
      renameSync(staging, at(top, COPY_UP_COMPLETE));
    }
    moveIn(top);
  } finally {
    closeSync(top);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * Step 5: moves the entries of {@link COPY_UP_COMPLETE} into the volume's top `top` (an fd),
 * gives the top the copy's owner and mode, and removes {@link COPY_UP_COMPLETE}.
 */
function moveIn(top: number): void {
  const done = at(top, COPY_UP_COMPLETE);
  for (const name of readdirSync(done)) {
    if (name === COPY_UP_STAGING || name === COPY_UP_COMPLETE) continue;
    try {
      renameat2(`${done}/${name}`, at(top, name), RENAME_NOREPLACE);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      if (e.errnoCode === 'EEXIST') continue;
      if (e.errnoCode !== 'EINVAL') throw e;
      // A file system without RENAME_NOREPLACE: we hold the lock, so a check first is as good.
      if (!exists(at(top, name))) renameSync(`${done}/${name}`, at(top, name));
    }
  }
  const st = statSync(done);
  fchownSync(top, st.uid, st.gid);
  fchmodSync(top, st.mode & 0o7777);
  removeTree(top, COPY_UP_COMPLETE);
}

/**
 * Removes `name` in the directory `dir` (an fd) and everything under it, as berth-init's
 * remove_tree: no recursion and a fixed number of fds at any depth. It goes down into the first
 * directory that is not empty, removes what it can, and comes back up through ".." to list the
 * parent again. Names are taken relative to an fd of their directory, symlinks never followed.
 */
function removeTree(dir: number, name: string): void {
  if (!exists(at(dir, name))) return;
  if (!lstatSync(at(dir, name)).isDirectory()) {
    unlinkSync(at(dir, name));
    return;
  }
  let cur = openSync(at(dir, name), DIR_FLAGS);
  let depth = 0;
  try {
    for (;;) {
      let below = -1;
      for (const e of readdirSync(`/proc/self/fd/${cur}`, { withFileTypes: true })) {
        const p = at(cur, e.name);
        if (!e.isDirectory()) {
          unlinkSync(p);
          continue;
        }
        try {
          rmdirSync(p);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw err;
          below = openSync(p, DIR_FLAGS);
          break;
        }
      }
      if (below >= 0) {
        closeSync(cur);
        cur = below;
        depth++;
        continue;
      }
      if (depth === 0) break;
      const up = openSync(at(cur, '..'), DIR_FLAGS);
      closeSync(cur);
      cur = up;
      depth--;
    }
  } finally {
    closeSync(cur);
  }
  rmdirSync(at(dir, name));
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
    throw new ConflictError('CONFLICT', 'copy-up: a directory was moved while it was copied');
  }
  return up;
}

/**
 * Copies the tree under `from` into the existing directory `to`, as berth-init's copy_tree
 * (`monitor/copyup.h`) does: any depth is copied whole, with no recursion and a fixed number of
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
            throw cleanupAfter(e, () => closeSync(upFrom));
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
          throw cleanupAfter(
            e,
            () => closeSync(a),
            () => b >= 0 && closeSync(b),
          );
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
