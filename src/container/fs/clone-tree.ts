/**
 * Writes the entries of a walk (a container's upper dir, as `union.ts`'s `walkUpper` yields it)
 * as a copy under a new directory, keeping what an overlay lower dir needs: owners, modes
 * (set-id bits included), extended attributes, hardlinks, device nodes, times. A snapshot's
 * layer is made so (`snapshot-store.ts`).
 *
 * - Overlay whiteouts are 0/0 character devices, copied as devices (so still whiteouts); an opaque
 *   directory keeps `trusted.overlay.opaque`, as the layer store's layers carry them
 *   (`image/layer-writer.ts`). The overlay's other `trusted.overlay.*` attributes (origin,
 *   impure, redirect) describe the upper dir's own history, not content: left out.
 * - Regular files are copied with `COPYFILE_FICLONE`: a reflink (`FICLONE`) on file systems that
 *   share extents (btrfs, xfs), else libuv's in-kernel copy (`copy_file_range`, then `sendfile`).
 * - Entries with more than one link are linked to the first copy of their inode.
 * - Times are set after content (directories' once everything below them is in), to the
 *   microsecond.
 *
 * The walk's paths are the engine's own directories, never followed; the destination is a fresh
 * directory of the engine. Symlinks are copied as links.
 *
 * @module
 */
import * as fs from 'node:fs';
import { mknod } from '../../kernel/fs.js';
import { lgetxattr, llistxattr, lsetxattr } from '../../kernel/xattr.js';
import { OPAQUE_XATTR } from '../../image/layer-writer.js';
import { utf8 } from '../../image/extract-paths.js';
import type { WalkItem } from '../../image/tar-writer.js';

/** What {@link cloneItems} copied. */
export interface CloneResult {
  /** Entries written (directories, files, links, devices). */
  entries: number;
  /** Bytes of regular-file content (a hardlink counted once). */
  bytes: number;
}

const SLASH = Buffer.from('/');
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

/** The extended attributes a copy keeps: all but the overlay's bookkeeping (the opaque mark stays). */
export function keptXattr(name: string): boolean {
  return !name.startsWith(OVERLAY_XATTR_PREFIX) || name === OPAQUE_XATTR;
}

/** Copies the extended attributes of `from` onto `to` (after its owner is set: a chown drops `security.capability`). */
function copyXattrs(from: Buffer, to: Buffer): void {
  for (const name of llistxattr(from)) {
    if (!keptXattr(name)) continue;
    const value = lgetxattr(from, name);
    if (value !== undefined) lsetxattr(to, name, value);
  }
}

/**
 * A device node or fifo at `to` (`name`, the binary-string name under `dest`): the binding takes
 * text, so a name that is not UTF-8 is made under a scratch name and renamed into place.
 */
function makeNode(dest: string, name: string, to: Buffer, st: fs.Stats, scratch: () => string): void {
  const mode = st.mode & (fs.constants.S_IFMT | 0o7777);
  const text = utf8(name);
  if (text !== undefined) return mknod(`${dest}/${text}`, mode, BigInt(st.rdev));
  const tmp = `${dest}/${scratch()}`;
  mknod(tmp, mode, BigInt(st.rdev));
  fs.renameSync(tmp, to);
}

/**
 * Writes every entry of `items` (parents before children, names relative to the walk's root as
 * binary strings) under `dest`, an existing empty directory; see the module for what is kept.
 */
export function cloneItems(items: Iterable<WalkItem>, dest: string): CloneResult {
  const root = Buffer.from(dest, 'utf8');
  const firstLink = new Map<string, Buffer>();
  const dirs: Array<[Buffer, fs.Stats]> = [];
  let entries = 0;
  let bytes = 0;
  let scratch = 0;
  for (const { name, path, st } of items) {
    const to = Buffer.concat([root, SLASH, Buffer.from(name, 'latin1')]);
    entries++;
    if (!st.isDirectory() && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstLink.get(key);
      if (first !== undefined) {
        fs.linkSync(first, to);
        continue;
      }
      firstLink.set(key, to);
    }
    if (st.isDirectory()) fs.mkdirSync(to, { mode: 0o700 });
    else if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(path, { encoding: 'buffer' }), to);
    else if (st.isFile()) {
      fs.copyFileSync(path, to, fs.constants.COPYFILE_FICLONE);
      bytes += st.size;
    } else makeNode(dest, name, to, st, () => `.berth-clone-${scratch++}`);
    fs.lchownSync(to, st.uid, st.gid);
    if (st.isSymbolicLink()) {
      fs.lutimesSync(to, st.atimeMs / 1000, st.mtimeMs / 1000);
      continue;
    }
    fs.chmodSync(to, st.mode & 0o7777);
    copyXattrs(path, to);
    if (st.isDirectory()) dirs.push([to, st]);
    else fs.utimesSync(to, st.atimeMs / 1000, st.mtimeMs / 1000);
  }
  // Deepest first: setting a directory's times after its children were made keeps them.
  for (let i = dirs.length - 1; i >= 0; i--) {
    const [to, st] = dirs[i]!;
    fs.utimesSync(to, st.atimeMs / 1000, st.mtimeMs / 1000);
  }
  return { entries, bytes };
}
