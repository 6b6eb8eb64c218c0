/**
 * Applies tar entries under a directory, treating the archive as hostile input. This is berth's
 * one extractor: it unpacks image layers (into a fresh directory), copies into a container's root
 * (`docker cp`, where the container's processes may change the tree meanwhile), and is the one
 * the builder's COPY/ADD is to use. One safety model for all:
 *
 * - Names are cleaned lexically as Go's `filepath.Clean` does. A leading `/` is dropped (the
 *   entry lands inside the destination, as Docker does); a `..` that climbs above the
 *   destination is rejected.
 * - Nothing is ever written through a symlink, not even one swapped in while the archive is
 *   written. The destination is a directory fd; an entry's parent is opened under it with openat2
 *   `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS` (or, to create missing directories and to name the
 *   component in the way, one component at a time with `O_NOFOLLOW`), and a symlink or
 *   non-directory in the way rejects the entry. Final components are created under the parent's
 *   fd (`/proc/self/fd/<fd>/<name>`) with `O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdir`, `symlink`, `link`
 *   or `mknod`, none of which follow a symlink, and their attributes are set through their own fd
 *   or with calls that do not follow one. An existing entry is removed first (Docker's
 *   semantics: a later entry replaces an earlier one, except a directory over a directory, which
 *   keeps its content).
 * - A hardlink's target obeys the same rules and must already exist under the destination (for a
 *   layer: in this layer); it may not be a directory. A symlink may point anywhere: it is only
 *   ever created, never followed.
 * - `trusted.overlay.*` attributes from the archive are dropped (they steer overlayfs); whiteouts
 *   are the only way to produce them.
 *
 * What differs between a layer and a copy is Docker's semantics, not safety ({@link ExtractKind}):
 * in a layer, whiteouts become overlayfs whiteouts (`.wh.NAME` → a 0/0 character device `NAME`,
 * `.wh..wh..opq` → `trusted.overlay.opaque=y` on its directory; legacy AUFS metadata such as
 * `.wh..wh.plnk` is skipped), an entry for the root sets the destination's owner, mode and times,
 * and a non-directory replaces a directory. In a copy, `.wh.` names are plain files, the root
 * entry is ignored (the destination keeps its owner and mode) and a non-directory over a
 * directory is a conflict, as `docker cp` has it. An `add` (the builder's `ADD` of a local
 * archive) is a copy in which a non-directory replaces a directory, as BuildKit's untar does.
 *
 * All calls are synchronous: the extractor runs between chunks of the archive, so the event loop
 * is free while the next chunk is read or decompressed, and no thread-pool round trip is paid per
 * system call (this is what keeps unpacking near `tar -x` speed).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { cleanupAfter, ConflictError, UnsafeLayerError } from '../errors.js';
import {
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
} from '../kernel/constants.js';
import { close } from '../kernel/fd.js';
import { makedev, mknod } from '../kernel/fs.js';
import { RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2 } from '../kernel/openat2.js';
import { fsetxattr, lsetxattr } from '../kernel/xattr.js';
import { cleanEntryName, errnoOf, fdPath, printable, toFs, under, utf8 } from './extract-paths.js';
import type { TarEntry, TarSink } from './tar-reader.js';

const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
/** Flags to open a directory to set its attributes (never a symlink in its place). */
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
/** Resolution under the destination: inside it, through no symlink at all. */
const UNDER = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/** The xattr overlayfs reads to make a directory opaque. */
export const OPAQUE_XATTR = 'trusted.overlay.opaque';
/** Prefix of a whiteout entry's base name. */
export const WHITEOUT_PREFIX = '.wh.';
/** Prefix of AUFS metadata names (also of the opaque marker). */
export const WHITEOUT_META_PREFIX = '.wh..wh.';
/** Base name of the opaque-directory marker. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

/** The directory of the entries being written, open under the destination. */
interface Parent {
  /** Its name under the destination (binary string; `''` for the destination itself). */
  rel: string;
  /** An `O_PATH` fd on it (the destination's own fd for `''`). */
  fd: number;
  /** New entries inherit the directory's group (so a root-owned entry still needs a chown); read when first needed. */
  setgid?: boolean;
}

/**
 * What an archive is extracted as (see the module's notes): an image `layer`, a `copy` into a tree
 * as `docker cp` does, or an `add` into a tree as a Dockerfile's `ADD` of a local archive does.
 */
export type ExtractKind = 'layer' | 'copy' | 'add';

/** The process umask, read without changing it; all bits set (always chmod) when unknown. */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    return m ? parseInt(m[1] as string, 8) : 0o777;
  } catch {
    // No /proc: unknown, so every mode is set with chmod (right either way).
    return 0o777;
  }
}

/** Extracts an archive's entries under a directory fd (see the module's notes). One instance per archive. */
export class TarExtractor implements TarSink {
  readonly #dest: number;
  readonly #layer: boolean;
  /** A non-directory replaces a directory in its way (a layer, an ADD); in a copy it is a conflict. */
  readonly #replaceDirs: boolean;
  /** In messages: what is rejected, and where a hardlink's target must be. */
  readonly #what: string;
  readonly #where: string;
  /** Entries this process creates are owned by 0:0 already (no chown needed for those). */
  readonly #asRoot = process.geteuid?.() === 0 && process.getegid?.() === 0;
  readonly #umask = currentUmask();
  #fd = -1;
  #file: TarEntry | undefined;
  #fileChown = true;
  #parent: Parent | undefined;
  /** Directory times, set last (creating children changes them), by name under the destination. */
  readonly #dirTimes = new Map<string, [atime: number, mtime: number]>();
  /** Number of entries seen. */
  entries = 0;
  /** Sum of the entries' content sizes in bytes (Docker's layer size). */
  size = 0;

  /** An extractor into the directory `destFd` (any fd on it, `O_PATH` will do; not closed by the extractor), as `kind`. */
  constructor(destFd: number, kind: ExtractKind) {
    this.#dest = destFd;
    this.#layer = kind === 'layer';
    this.#replaceDirs = kind !== 'copy';
    this.#what = this.#layer ? 'layer' : 'archive';
    this.#where = this.#layer ? 'this layer' : "the archive's destination";
  }

  /** {@inheritDoc TarSink.entry} */
  entry(e: TarEntry): void {
    this.entries++;
    const rel = cleanEntryName(e.name);
    if (rel === '') return this.#rootEntry(e);
    if (this.#layer && rel.startsWith(WHITEOUT_META_PREFIX) && rel !== WHITEOUT_OPAQUE) return; // AUFS metadata
    const slash = rel.lastIndexOf('/');
    const parentRel = slash === -1 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);
    const parent = this.#openParent(parentRel, e.name);
    if (this.#layer && base.startsWith(WHITEOUT_PREFIX)) return this.#whiteout(e, parent, base);
    const path = under(parent.fd, base);
    switch (e.type) {
      case 'directory':
        this.#create(rel, path, () => fs.mkdirSync(path, 0o700), true);
        return this.#applyDir(e, rel, path);
      case 'file':
        this.#fd = this.#create(rel, path, () => fs.openSync(path, CREATE_FLAGS, e.mode & 0o777)) ?? -1;
        this.#file = e;
        this.#fileChown = this.#needsChown(e, parent);
        return;
      case 'symlink':
        if (e.linkname === '') throw new UnsafeLayerError(e.name, `symlink '${printable(e.name)}' has an empty target`);
        this.#create(rel, path, () => fs.symlinkSync(toFs(e.linkname), path));
        if (this.#needsChown(e, parent)) fs.lchownSync(path, e.uid, e.gid);
        this.#xattrs(e, path, true);
        fs.lutimesSync(path, ...times(e));
        return;
      case 'link':
        return this.#hardlink(e, rel, path);
      default:
        return this.#node(e, rel, parent, base, path);
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
    if (this.#fd < 0 || e === undefined) return;
    const fd = this.#fd;
    try {
      // Created with the mode's permission bits; fchmod only when the umask took some away or
      // there are setuid/setgid/sticky bits (set after fchown, which clears setuid/setgid).
      if (this.#fileChown) fs.fchownSync(fd, e.uid, e.gid);
      if ((e.mode & 0o7000) !== 0 || (e.mode & this.#umask & 0o777) !== 0) fs.fchmodSync(fd, e.mode);
      for (const [name, value] of e.xattrs) if (allowedXattr(name)) fsetxattr(fd, name, value);
      fs.futimesSync(fd, ...times(e));
      this.size += e.size;
    } finally {
      this.#fd = -1;
      this.#file = undefined;
      fs.closeSync(fd);
    }
  }

  /** Sets the directories' times (last: creating children changes them) and releases fds. */
  finish(): void {
    this.#closeParent();
    for (const [rel, [atime, mtime]] of this.#dirTimes) {
      let fd: number;
      try {
        fd = this.#openDir(rel, rel, '', false);
      } catch (e) {
        if (e instanceof UnsafeLayerError) continue; // replaced meanwhile (in a container's root)
        throw e;
      }
      try {
        fs.utimesSync(fdPath(fd, ''), atime, mtime); // the directory itself, through its fd
      } finally {
        this.#release(fd);
      }
    }
  }

  /** Releases every fd (after a failure). */
  abort(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
    this.#closeParent();
  }

  #rootEntry(e: TarEntry): void {
    if (!this.#layer) return; // a copy's destination keeps its owner and mode
    if (e.type !== 'directory') {
      throw new UnsafeLayerError(
        e.name,
        `layer entry '${printable(e.name)}' (${e.type}) would replace the layer's root directory`,
      );
    }
    this.#applyDir(e, '', fdPath(this.#dest, '.'));
  }

  /** Sets a directory's owner, mode and attributes through its own fd; its times are set at the end. */
  #applyDir(e: TarEntry, rel: string, path: string | Buffer): void {
    const fd = fs.openSync(path, DIR_FLAGS);
    try {
      fs.fchownSync(fd, e.uid, e.gid);
      fs.fchmodSync(fd, e.mode);
      for (const [name, value] of e.xattrs) if (allowedXattr(name)) fsetxattr(fd, name, value);
    } finally {
      fs.closeSync(fd);
    }
    this.#dirTimes.delete(rel); // the last entry's times, in the order the directories came
    this.#dirTimes.set(rel, times(e));
    if (this.#parent?.rel === rel) this.#parent.setgid = (e.mode & 0o2000) !== 0;
  }

  /** Whether an entry created in `parent` must be chowned to get the entry's owner. */
  #needsChown(e: TarEntry, parent: Parent): boolean {
    if (!(this.#asRoot && e.uid === 0 && e.gid === 0)) return true;
    parent.setgid ??= (fs.fstatSync(parent.fd).mode & 0o2000) !== 0;
    return parent.setgid;
  }

  #whiteout(e: TarEntry, parent: Parent, base: string): void {
    if (base === WHITEOUT_OPAQUE) return lsetxattr(fdPath(parent.fd, '.'), OPAQUE_XATTR, Buffer.from('y'));
    if (base.startsWith(WHITEOUT_META_PREFIX)) return; // other AUFS metadata
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') {
      throw new UnsafeLayerError(e.name, `whiteout '${printable(e.name)}' names no file`);
    }
    const path = under(parent.fd, name);
    this.#create(parent.rel === '' ? name : `${parent.rel}/${name}`, path, () =>
      this.#mknod(parent.fd, name, S_IFCHR, 0n),
    );
    fs.lchownSync(path, e.uid, e.gid);
  }

  #hardlink(e: TarEntry, rel: string, path: string | Buffer): void {
    const show = `hardlink '${printable(e.name)}' -> '${printable(e.linkname)}'`;
    let targetRel: string;
    try {
      targetRel = cleanEntryName(e.linkname);
    } catch (err) {
      throw new UnsafeLayerError(e.name, `${show} points outside ${this.#where}; the ${this.#what} was rejected`, {
        cause: err,
      });
    }
    if (targetRel === '') throw new UnsafeLayerError(e.name, `${show} targets the root of ${this.#where}`);
    if (targetRel === rel) return;
    const slash = targetRel.lastIndexOf('/');
    const tfd = this.#openDir(slash === -1 ? '' : targetRel.slice(0, slash), e.name, show, false);
    try {
      const target = under(tfd, targetRel.slice(slash + 1));
      const st = fs.lstatSync(target, { throwIfNoEntry: false });
      if (st === undefined) throw new UnsafeLayerError(e.name, `${show}: the target is not in ${this.#where}`);
      if (st.isDirectory()) throw new UnsafeLayerError(e.name, `${show}: the target is a directory`);
      // link(2) does not follow a symlink target: linking to a symlink links the symlink itself.
      this.#create(rel, path, () => fs.linkSync(target, path));
    } finally {
      this.#release(tfd);
    }
  }

  #node(e: TarEntry, rel: string, parent: Parent, base: string, path: string | Buffer): void {
    const kind = e.type === 'character-device' ? S_IFCHR : e.type === 'block-device' ? S_IFBLK : S_IFIFO;
    const dev = kind === S_IFIFO ? 0n : makedev(e.devmajor, e.devminor);
    this.#create(rel, path, () => this.#mknod(parent.fd, base, kind | (e.mode & 0o777), dev));
    fs.lchownSync(path, e.uid, e.gid);
    const fd = fs.openSync(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    try {
      fs.chmodSync(fdPath(fd, ''), e.mode); // the node just made, through its own fd
    } finally {
      fs.closeSync(fd);
    }
    this.#xattrs(e, path, false);
    fs.lutimesSync(path, ...times(e));
  }

  /**
   * mknod(2) of `base` under the directory fd `pfd`. The binding takes text: a name that is not
   * UTF-8 is made under a scratch name, then linked into place (link(2), like mknod, fails on an
   * existing name).
   */
  #mknod(pfd: number, base: string, mode: number, dev: bigint): void {
    const text = utf8(base);
    if (text !== undefined) return mknod(`/proc/self/fd/${pfd}/${text}`, mode, dev);
    const scratch = `.berth-node-${randomBytes(8).toString('hex')}`;
    mknod(`/proc/self/fd/${pfd}/${scratch}`, mode, dev);
    let failed: unknown;
    try {
      fs.linkSync(fdPath(pfd, scratch), fdPath(pfd, base));
    } catch (e) {
      failed = e;
    }
    try {
      fs.unlinkSync(fdPath(pfd, scratch));
    } catch (e) {
      throw failed === undefined
        ? e
        : new AggregateError([failed, e], `cannot make the node '${printable(base)}', nor remove its scratch name`);
    }
    if (failed !== undefined) throw failed;
  }

  /**
   * Runs `make` to create a final component; when something is already there, removes it (unless
   * `keepDir` and it is a directory: then returns undefined) and runs `make` again. A directory in
   * the way of a non-directory is removed in a layer or an add, and a conflict in a copy.
   */
  #create<T>(rel: string, path: string | Buffer, make: () => T, keepDir = false): T | undefined {
    try {
      return make();
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw e;
    }
    const st = fs.lstatSync(path);
    if (st.isDirectory()) {
      if (keepDir) return undefined;
      if (!this.#replaceDirs)
        throw new ConflictError(
          'CONFLICT',
          `cannot overwrite directory '${printable(rel)}' with a non-directory; remove it first`,
        );
      fs.rmSync(path, { recursive: true, force: true }); // rm never follows symlinks inside
      for (const d of this.#dirTimes.keys()) if (d === rel || d.startsWith(`${rel}/`)) this.#dirTimes.delete(d);
    } else {
      fs.unlinkSync(path);
    }
    return make();
  }

  /** The directory `rel` under the destination, kept open while entries go into it. */
  #openParent(rel: string, entry: string): Parent {
    if (this.#parent?.rel === rel) return this.#parent;
    this.#closeParent();
    this.#parent = { rel, fd: this.#openDir(rel, entry, `entry '${printable(entry)}'`, true) };
    return this.#parent;
  }

  #closeParent(): void {
    if (this.#parent !== undefined) this.#release(this.#parent.fd);
    this.#parent = undefined;
  }

  /** Closes an fd from {@link #openDir} (the destination's own stays open). */
  #release(fd: number): void {
    if (fd !== this.#dest) close(fd);
  }

  /**
   * Opens the directory `rel` under the destination (an `O_PATH` fd; the destination's own for
   * `''`), through no symlink: in one openat2 call, or component by component under the one
   * before, making missing ones when `create` (`mkdir -p`, 0755) and otherwise rejecting the
   * entry. `show` names the entry in messages.
   */
  #openDir(rel: string, entry: string, show: string, create: boolean): number {
    if (rel === '') return this.#dest;
    const text = utf8(rel);
    if (text !== undefined) {
      try {
        return openat2(this.#dest, text, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, UNDER);
      } catch (e) {
        const code = errnoOf(e);
        if (code !== 'ENOENT' && code !== 'ELOOP' && code !== 'ENOTDIR') throw e;
      }
    }
    let fd = this.#dest;
    let cur = '';
    try {
      for (const part of rel.split('/')) {
        cur = cur === '' ? part : `${cur}/${part}`;
        const next = this.#openComponent(fd, part, create, () => {
          throw new UnsafeLayerError(entry, `${show}: the target is not in ${this.#where}`);
        });
        if (next === undefined) {
          const st = fs.lstatSync(fdPath(fd, part), { throwIfNoEntry: false });
          if (st?.isSymbolicLink()) {
            throw new UnsafeLayerError(
              entry,
              `${show} would be written through the symlink '${printable(cur)}'; the ${this.#what} was rejected`,
            );
          }
          throw new UnsafeLayerError(entry, `${show}: '${printable(cur)}' is not a directory`);
        }
        this.#release(fd);
        fd = next;
      }
    } catch (e) {
      throw cleanupAfter(e, () => this.#release(fd));
    }
    return fd;
  }

  /**
   * Opens the directory `part` under the directory fd `fd` without following a symlink (an
   * `O_PATH` fd), making it when missing and `create`, else calling `missing`; undefined when
   * something else (a symlink, a file) is there.
   */
  #openComponent(fd: number, part: string, create: boolean, missing: () => never): number | undefined {
    const path = fdPath(fd, part);
    let made = false;
    for (let tried = false; ; tried = true) {
      try {
        const next = fs.openSync(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (made) fs.chmodSync(fdPath(next, ''), 0o755); // the directory just made, through its fd: no umask
        return next;
      } catch (e) {
        const code = errnoOf(e);
        if (code === 'ENOTDIR' || code === 'ELOOP') return undefined;
        if (code !== 'ENOENT' || tried) throw e;
      }
      if (!create) missing();
      try {
        fs.mkdirSync(path, 0o755);
        made = true;
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw e; // made meanwhile (in a container's root)
      }
    }
  }

  #xattrs(e: TarEntry, path: string | Buffer, symlink: boolean): void {
    for (const [name, value] of e.xattrs) {
      if (!allowedXattr(name)) continue;
      try {
        lsetxattr(path, name, value);
      } catch (err) {
        // user.* attributes cannot be set on symlinks; the kernel says EPERM.
        if (!(symlink && (err as { errnoCode?: string }).errnoCode === 'EPERM')) throw err;
      }
    }
  }
}

function allowedXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.');
}

/** [atime, mtime] as Docker sets them: the access time is never before the modification time. */
function times(e: TarEntry): [number, number] {
  return [e.atime === undefined || e.atime < e.mtime ? e.mtime : e.atime, e.mtime];
}
