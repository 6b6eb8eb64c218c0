/**
 * Docker's volume copy-up: the image's content at a mount target is copied into a new, empty
 * volume the first time it is mounted there. Runs in the init, inside the container's root,
 * synchronously; owners, modes, symlinks and times are kept. Symlinks are copied as links,
 * never followed.
 *
 * @module
 */
import {
  chmodSync, copyFileSync, lchownSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, statSync, symlinkSync,
} from 'node:fs';
import { join } from 'node:path';

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

/** Copies the tree under `from` into the existing directory `to`. */
export function copyTree(from: string, to: string): void {
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    const st = lstatSync(src);
    if (st.isDirectory()) {
      mkdirSync(dst, { mode: st.mode & 0o7777 });
      copyTree(src, dst);
    } else if (st.isSymbolicLink()) {
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
}
