/**
 * File operations on a container's root: `docker cp` in both directions, `docker export` and the
 * layer of `docker commit`.
 *
 * Copies resolve paths inside the container's root through a directory fd, never by joining
 * strings: the root is `/proc/<pid>/root` of a running container, or, for a stopped one, a
 * detached overlay mount of its upper dir over its image layers (made with fsopen/fsmount, reached
 * only through its fd, gone when the fd is closed), so writes land in the upper dir with
 * overlayfs's own copy-up. The destination or source path is opened with openat2
 * `RESOLVE_IN_ROOT` (symlinks followed, but inside the root); every later operation works on a
 * final component under a directory fd (`/proc/self/fd/<fd>/<name>`), with calls that do not
 * follow a trailing symlink, and entries of an archive are resolved with `RESOLVE_NO_SYMLINKS`
 * under the destination: nothing is read or written through a symlink the container controls.
 *
 * @module
 */
import * as fs from 'node:fs';
import { ConflictError, InvalidArgumentError, NotFoundError, UnsafeLayerError } from '../errors.js';
import { close } from '../kernel/fd.js';
import { O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH, S_IFBLK, S_IFCHR, S_IFIFO } from '../kernel/constants.js';
import { makedev, mknod } from '../kernel/fs.js';
import { FSCONFIG_CMD_CREATE, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC, fsconfig, fsmount, fsopen } from '../kernel/fsmount.js';
import { RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2 } from '../kernel/openat2.js';
import { fsetxattr } from '../kernel/xattr.js';
import { cleanEntryName, errnoOf, fdPath as at, printable } from '../image/layer-writer.js';
import { TarReader, type TarEntry, type TarSink } from '../image/tar-reader.js';
import { packItems, walkAt, walkBelow } from '../image/tar-writer.js';

/**
 * Mounts, detached, the overlay of `upper` (with `work`) over `lowers` (topmost first); returns
 * the fd of its root. Nothing appears in any mount table; closing the fd unmounts it.
 */
export function mountDetachedOverlay(upper: string, work: string, lowers: readonly string[]): number {
  const fsfd = fsopen('overlay', FSOPEN_CLOEXEC);
  try {
    for (const l of lowers) fsconfig(fsfd, FSCONFIG_SET_STRING, 'lowerdir+', l);
    fsconfig(fsfd, FSCONFIG_SET_STRING, 'upperdir', upper);
    fsconfig(fsfd, FSCONFIG_SET_STRING, 'workdir', work);
    fsconfig(fsfd, FSCONFIG_CMD_CREATE, null, null);
    return fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
  } finally {
    close(fsfd);
  }
}

/** Splits a container path into its directory and final component (`''` for the root). */
function splitPath(path: string): [dir: string, base: string] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) return ['/', ''];
  const base = parts.pop() as string;
  if (base === '..') return [`/${[...parts, '..'].join('/')}`, ''];
  return [`/${parts.join('/')}`, base];
}

/** Opens `path` (a directory) inside the root `rootFd`, following symlinks inside the root only. */
function openDirInRoot(rootFd: number, path: string, field: string): number {
  try {
    return openat2(rootFd, path === '' ? '/' : path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT') throw new NotFoundError('path', path, `'${path}' does not exist in the container`, { cause: e });
    if (code === 'ENOTDIR') throw new InvalidArgumentError(field, `'${path}' is not a directory in the container`, { cause: e });
    throw e;
  }
}

/**
 * The tar of `path` inside the root `rootFd`, as `docker cp CONTAINER:path -`: a file as its base
 * name, a directory as its base name and everything below; a final symlink is copied as a symlink.
 * The root itself gives its content.
 */
export async function* packPath(rootFd: number, path: string): AsyncGenerator<Buffer> {
  const [dir, base] = splitPath(path);
  const dfd = openDirInRoot(rootFd, dir, 'path');
  try {
    if (base === '') {
      // The directory itself (`/` or a path ending in `..`): its entries, without a top entry.
      const rfd = fs.openSync(at(dfd, ''), fs.constants.O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      try {
        yield* packItems(walkBelow(rfd));
      } finally {
        fs.closeSync(rfd);
      }
      return;
    }
    const baseBytes = Buffer.from(base, 'utf8');
    if (fs.lstatSync(at(dfd, baseBytes), { throwIfNoEntry: false }) === undefined) {
      throw new NotFoundError('path', path, `'${path}' does not exist in the container`);
    }
    yield* packItems(walkAt(dfd, baseBytes, baseBytes.toString('latin1')));
  } finally {
    close(dfd);
  }
}

// ───────────────────────────── extracting ─────────────────────────────

const UNDER = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/**
 * Extracts an archive under the directory fd `destFd`, treating it as hostile: names are cleaned
 * (a `..` above the destination is rejected), each entry's parent is opened with openat2 under
 * the destination with no symlink allowed, and final components are created with calls that do
 * not follow symlinks. A directory over a directory merges; any other entry replaces what is
 * there, except that a directory is never replaced by a non-directory (as `docker cp`).
 */
export class FdExtractor implements TarSink {
  readonly #dest: number;
  #parent: [rel: string, fd: number] | undefined;
  #fd = -1;
  #file: TarEntry | undefined;
  readonly #dirTimes: Array<[rel: string, atime: number, mtime: number]> = [];

  /** An extractor into the directory `destFd` (not closed by it). */
  constructor(destFd: number) {
    this.#dest = destFd;
  }

  /** {@inheritDoc TarSink.entry} */
  entry(e: TarEntry): void {
    const rel = cleanEntryName(e.name);
    if (rel === '') return; // the destination itself keeps its owner and mode
    const slash = rel.lastIndexOf('/');
    const parentRel = slash === -1 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);
    const pfd = this.#openParent(parentRel, e.name);
    const path = at(pfd, base);
    const existing = fs.lstatSync(path, { throwIfNoEntry: false });
    if (e.type === 'directory') {
      if (existing !== undefined && !existing.isDirectory()) fs.unlinkSync(path);
      if (existing === undefined || !existing.isDirectory()) fs.mkdirSync(path, 0o700);
      const dfd = fs.openSync(path, fs.constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      try {
        fs.fchownSync(dfd, e.uid, e.gid);
        fs.fchmodSync(dfd, e.mode);
        this.#xattrs(dfd, e);
      } finally {
        fs.closeSync(dfd);
      }
      this.#dirTimes.push([rel, ...times(e)]);
      return;
    }
    if (existing?.isDirectory()) {
      throw new ConflictError('CONFLICT', `cannot overwrite directory '${printable(rel)}' with a non-directory; remove it first`);
    }
    if (existing !== undefined) fs.unlinkSync(path);
    switch (e.type) {
      case 'file':
        this.#fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW | O_CLOEXEC, e.mode & 0o777);
        this.#file = e;
        return;
      case 'symlink':
        if (e.linkname === '') throw new UnsafeLayerError(e.name, `symlink '${printable(e.name)}' has an empty target`);
        fs.symlinkSync(Buffer.from(e.linkname, 'latin1') as unknown as string, path);
        fs.lchownSync(path, e.uid, e.gid);
        fs.lutimesSync(path, ...times(e));
        return;
      case 'link':
        return this.#hardlink(e, rel, path);
      default:
        return this.#node(e, pfd, base, path);
    }
  }

  /** {@inheritDoc TarSink.data} */
  data(chunk: Uint8Array): void {
    if (this.#fd < 0) return;
    let off = 0;
    while (off < chunk.byteLength) off += fs.writeSync(this.#fd, chunk, off, chunk.byteLength - off);
  }

  /** {@inheritDoc TarSink.entryEnd} */
  entryEnd(): void {
    const e = this.#file;
    const fd = this.#fd;
    if (fd < 0 || e === undefined) return;
    this.#fd = -1;
    this.#file = undefined;
    try {
      fs.fchownSync(fd, e.uid, e.gid);
      fs.fchmodSync(fd, e.mode);
      this.#xattrs(fd, e);
      fs.futimesSync(fd, ...times(e));
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Sets the directories' times (last: creating children changes them) and releases fds. */
  finish(): void {
    this.#closeParent();
    for (const [rel, atime, mtime] of this.#dirTimes.reverse()) {
      let fd: number;
      try {
        fd = openat2(this.#dest, rel, fs.constants.O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, UNDER);
      } catch {
        continue; // replaced meanwhile
      }
      try {
        fs.futimesSync(fd, atime, mtime);
      } finally {
        close(fd);
      }
    }
  }

  /** Releases every fd (after a failure). */
  abort(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
    this.#closeParent();
  }

  #closeParent(): void {
    if (this.#parent !== undefined) close(this.#parent[1]);
    this.#parent = undefined;
  }

  /** Opens the directory `rel` under the destination, creating missing ones (`mkdir -p`, 0755). */
  #openParent(rel: string, entry: string): number {
    if (this.#parent?.[0] === rel) return this.#parent[1];
    this.#closeParent();
    let fd = this.#dest;
    let cur = '';
    const parts = rel === '' ? [] : rel.split('/');
    const owned: number[] = [];
    try {
      for (const part of parts) {
        cur = cur === '' ? part : `${cur}/${part}`;
        let next: number;
        try {
          next = openat2(fd, Buffer.from(part, 'latin1').toString('utf8'), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, UNDER);
        } catch (e) {
          const code = errnoOf(e);
          if (code === 'ELOOP') {
            throw new UnsafeLayerError(entry, `entry '${printable(entry)}' would be written through the symlink '${printable(cur)}'; the archive was rejected`, { cause: e });
          }
          if (code === 'ENOTDIR') throw new UnsafeLayerError(entry, `entry '${printable(entry)}': '${printable(cur)}' is not a directory`, { cause: e });
          if (code !== 'ENOENT') throw e;
          fs.mkdirSync(at(fd, part), 0o755);
          next = openat2(fd, Buffer.from(part, 'latin1').toString('utf8'), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, UNDER);
        }
        owned.push(next);
        fd = next;
      }
    } catch (e) {
      for (const f of owned) close(f);
      throw e;
    }
    for (const f of owned.slice(0, -1)) close(f);
    if (owned.length === 0) return this.#dest;
    this.#parent = [rel, fd];
    return fd;
  }

  #hardlink(e: TarEntry, rel: string, path: Buffer): void {
    const show = `hardlink '${printable(e.name)}' -> '${printable(e.linkname)}'`;
    let targetRel: string;
    try {
      targetRel = cleanEntryName(e.linkname);
    } catch (err) {
      throw new UnsafeLayerError(e.name, `${show} points outside the destination; the archive was rejected`, { cause: err });
    }
    if (targetRel === '' || targetRel === rel) throw new UnsafeLayerError(e.name, `${show} has no usable target`);
    const slash = targetRel.lastIndexOf('/');
    const tdir = slash === -1 ? '.' : Buffer.from(targetRel.slice(0, slash), 'latin1').toString('utf8');
    let tfd: number;
    try {
      tfd = openat2(this.#dest, tdir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, UNDER);
    } catch (err) {
      throw new UnsafeLayerError(e.name, `${show}: the target is not in the archive's destination`, { cause: err });
    }
    try {
      const target = at(tfd, targetRel.slice(slash + 1));
      const st = fs.lstatSync(target, { throwIfNoEntry: false });
      if (st === undefined) throw new UnsafeLayerError(e.name, `${show}: the target does not exist`);
      if (st.isDirectory()) throw new UnsafeLayerError(e.name, `${show}: the target is a directory`);
      fs.linkSync(target, path); // link(2) does not follow a final symlink
    } finally {
      close(tfd);
    }
  }

  #node(e: TarEntry, pfd: number, base: string, path: Buffer): void {
    const kind = e.type === 'character-device' ? S_IFCHR : e.type === 'block-device' ? S_IFBLK : S_IFIFO;
    const dev = kind === S_IFIFO ? 0n : makedev(e.devmajor, e.devminor);
    const text = Buffer.from(base, 'latin1').toString('utf8');
    if (Buffer.from(text, 'utf8').toString('latin1') !== base) throw new InvalidArgumentError('tar', `device name '${printable(base)}' is not valid UTF-8`);
    mknod(`/proc/self/fd/${pfd}/${text}`, kind | (e.mode & 0o777), dev);
    fs.lchownSync(path, e.uid, e.gid);
    const fd = fs.openSync(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    try {
      fs.chmodSync(`/proc/self/fd/${fd}`, e.mode); // the node just made, through its own fd
    } finally {
      fs.closeSync(fd);
    }
    fs.lutimesSync(path, ...times(e));
  }

  #xattrs(fd: number, e: TarEntry): void {
    for (const [name, value] of e.xattrs) if (!name.startsWith('trusted.overlay.')) fsetxattr(fd, name, value);
  }
}

function times(e: TarEntry): [number, number] {
  return [e.atime === undefined || e.atime < e.mtime ? e.mtime : e.atime, e.mtime];
}

/** What {@link extractPath} reads: a stream, or the whole archive. */
export type TarSource = AsyncIterable<Uint8Array> | Uint8Array;

/**
 * Extracts the archive `source` into the directory `path` inside the root `rootFd`, as
 * `docker cp - CONTAINER:path`. `path` must be a directory (a symlink to one inside the root is
 * followed inside the root).
 */
export async function extractPath(rootFd: number, path: string, source: TarSource): Promise<void> {
  const dest = openDirInRoot(rootFd, path, 'path');
  const sink = new FdExtractor(dest);
  const reader = new TarReader(sink);
  try {
    if (source instanceof Uint8Array) reader.write(source);
    else for await (const chunk of source) reader.write(chunk);
    reader.end();
    sink.finish();
  } catch (e) {
    sink.abort();
    if (e instanceof InvalidArgumentError && e.field === 'layer') throw new InvalidArgumentError('tar', e.message, { cause: e });
    throw e;
  } finally {
    close(dest);
  }
}
