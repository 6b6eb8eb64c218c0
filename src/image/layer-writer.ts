/**
 * Applies tar entries to a fresh directory, treating the archive as hostile input.
 *
 * The rules, checked for every entry before anything is written:
 *
 * - Names are cleaned lexically as Go's `filepath.Clean` does. A leading `/` is dropped (the
 *   entry lands inside the layer, as Docker does); a `..` that climbs above the layer root is
 *   rejected.
 * - Nothing is ever written through a symlink. Every parent component of an entry must be a real
 *   directory: the writer keeps a tree of the directories it created or verified (with `lstat`),
 *   and removes a subtree from it whenever a later entry replaces that directory. A component that
 *   is a symlink (created by an earlier entry) rejects the entry. Final components are created
 *   with `O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdir`, `symlink`, `link` or `mknod`, none of which follow
 *   a symlink; an existing entry is removed first (Docker's semantics: a later entry replaces an
 *   earlier one, except a directory over a directory, which keeps its content).
 * - A hardlink's target obeys the same rules and must already exist in this layer; it may not be
 *   a directory. A symlink may point anywhere: it is only ever created, never followed.
 * - `trusted.overlay.*` attributes from the archive are dropped (they steer overlayfs); whiteouts
 *   are the only way to produce them.
 *
 * Whiteouts become overlayfs whiteouts: `.wh.NAME` → a 0/0 character device `NAME`, and
 * `.wh..wh..opq` → `trusted.overlay.opaque=y` on its directory. Legacy AUFS metadata
 * (`.wh..wh.plnk`, …) is skipped.
 *
 * All calls are synchronous: the writer runs between chunks of the archive, so the event loop is
 * free while the next chunk is read or decompressed, and no thread-pool round trip is paid per
 * system call (this is what keeps unpacking near `tar -x` speed).
 *
 * @module
 */
import * as fs from 'node:fs';
import { UnsafeLayerError } from '../errors.js';
import { O_CLOEXEC, O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY, S_IFBLK, S_IFCHR, S_IFIFO } from '../kernel/constants.js';
import { makedev, mknod } from '../kernel/fs.js';
import { fsetxattr, lsetxattr } from '../kernel/xattr.js';
import type { TarEntry, TarSink } from './tar-reader.js';

const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;

/** The xattr overlayfs reads to make a directory opaque. */
export const OPAQUE_XATTR = 'trusted.overlay.opaque';
/** Prefix of a whiteout entry's base name. */
export const WHITEOUT_PREFIX = '.wh.';
/** Prefix of AUFS metadata names (also of the opaque marker). */
export const WHITEOUT_META_PREFIX = '.wh..wh.';
/** Base name of the opaque-directory marker. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

interface DirNode {
  children: Map<string, DirNode>;
  /** New entries inherit the directory's group (so a root-owned entry still needs a chown). */
  setgid: boolean;
  times?: [atime: number, mtime: number];
}

/** The process umask, read without changing it; all bits set (always chmod) when unknown. */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    return m ? parseInt(m[1] as string, 8) : 0o777;
  } catch {
    return 0o777;
  }
}

/**
 * Cleans an entry name lexically: drops `.`, empty components and a leading `/`, resolves `..`.
 * Returns the path relative to the layer root (`''` for the root itself), as a binary string.
 *
 * @throws UnsafeLayerError when `..` climbs above the root of a relative name, or the name holds a
 *   NUL byte.
 */
export function cleanEntryName(name: string): string {
  if (name.includes('\0')) throw new UnsafeLayerError(name, `layer entry '${printable(name)}' has a NUL byte in its name`);
  const absolute = name.startsWith('/');
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.length > 0) out.pop();
    else if (!absolute) {
      throw new UnsafeLayerError(name, `layer entry '${printable(name)}' points outside the layer (its '..' climbs above the root); the layer was rejected`);
    }
  }
  return out.join('/');
}

/** A binary-string name as readable text for messages. */
export function printable(binary: string): string {
  return Buffer.from(binary, 'latin1').toString('utf8');
}

/** A path under a directory fd, as bytes: `/proc/self/fd/<fd>/<name>` (the name is not followed). */
export function fdPath(fd: number, name: Buffer | string): Buffer {
  const prefix = Buffer.from(`/proc/self/fd/${fd}`);
  if (typeof name === 'string' ? name === '' : name.length === 0) return prefix;
  return Buffer.concat([prefix, Buffer.from('/'), typeof name === 'string' ? Buffer.from(name, 'latin1') : name]);
}

/** The errno code of a failed call: a kernel binding's `errnoCode` or Node's `code`. */
export function errnoOf(e: unknown): string | undefined {
  return (e as { errnoCode?: string; code?: string }).errnoCode ?? (e as NodeJS.ErrnoException).code;
}

const ASCII = /^[\x20-\x7e]*$/;

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/** Writes a layer's entries into `root` (an existing, empty directory). One instance per layer. */
export class LayerWriter implements TarSink {
  readonly #root: string;
  readonly #rootPrefix: string;
  readonly #rootPrefixBytes: Buffer;
  readonly #tree: DirNode = { children: new Map(), setgid: false };
  /** Entries this process creates are owned by 0:0 already (no chown needed for those). */
  readonly #asRoot = process.geteuid?.() === 0 && process.getegid?.() === 0;
  readonly #umask = currentUmask();
  #fd = -1;
  #file: TarEntry | undefined;
  #fileChown = true;
  #lastParent: [rel: string, node: DirNode] | undefined;
  /** Number of entries seen. */
  entries = 0;
  /** Sum of the entries' content sizes in bytes (Docker's layer size). */
  size = 0;

  /** A writer into `root`, which must exist and be empty. */
  constructor(root: string) {
    this.#root = root;
    this.#rootPrefix = `${root}/`;
    this.#rootPrefixBytes = Buffer.from(this.#rootPrefix, 'utf8');
  }

  /** {@inheritDoc TarSink.entry} */
  entry(e: TarEntry): void {
    this.entries++;
    const rel = cleanEntryName(e.name);
    if (rel === '') return this.#rootEntry(e);
    if (rel.startsWith(WHITEOUT_META_PREFIX) && rel !== WHITEOUT_OPAQUE) return; // AUFS metadata
    const slash = rel.lastIndexOf('/');
    const parentRel = slash === -1 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);
    const parent = this.#ensureDir(parentRel, e.name);
    if (base.startsWith(WHITEOUT_PREFIX)) return this.#whiteout(e, parentRel, parent, base);
    const path = this.#path(rel);
    switch (e.type) {
      case 'directory':
        return this.#directory(e, path, parent, base);
      case 'file':
        this.#fd = this.#create(path, parent, base, () => fs.openSync(path, CREATE_FLAGS, e.mode & 0o777)) ?? -1;
        this.#file = e;
        this.#fileChown = this.#needsChown(e, parent);
        return;
      case 'symlink':
        if (e.linkname === '') throw new UnsafeLayerError(e.name, `symlink '${printable(e.name)}' has an empty target`);
        this.#create(path, parent, base, () => fs.symlinkSync(toFs(e.linkname), path));
        if (this.#needsChown(e, parent)) fs.lchownSync(path, e.uid, e.gid);
        this.#xattrs(e, path, true);
        fs.lutimesSync(path, ...times(e));
        return;
      case 'link':
        return this.#hardlink(e, rel, path, parent, base);
      default:
        return this.#node(e, path, parent, base);
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

  /** Sets every directory's times (last, since creating children changes them). */
  finish(): void {
    const walk = (node: DirNode, rel: string): void => {
      for (const [name, child] of node.children) walk(child, rel === '' ? name : `${rel}/${name}`);
      if (node.times) fs.lutimesSync(this.#path(rel), ...node.times);
    };
    walk(this.#tree, '');
  }

  /** Releases the open file, if any (after a failure). */
  abort(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
  }

  /** The file-system path of `rel` (a binary string): text when ASCII, raw bytes otherwise. */
  #path(rel: string): string | Buffer {
    if (ASCII.test(rel)) return this.#rootPrefix + rel;
    return Buffer.concat([this.#rootPrefixBytes, Buffer.from(rel, 'latin1')]);
  }

  #rootEntry(e: TarEntry): void {
    if (e.type !== 'directory') {
      throw new UnsafeLayerError(e.name, `layer entry '${printable(e.name)}' (${e.type}) would replace the layer's root directory`);
    }
    this.#applyDir(e, this.#path(''), this.#tree);
  }

  #directory(e: TarEntry, path: string | Buffer, parent: DirNode, base: string): void {
    let node = parent.children.get(base);
    if (node === undefined) {
      node = { children: new Map(), setgid: false };
      this.#create(path, parent, base, () => fs.mkdirSync(path, 0o700), true);
      parent.children.set(base, node);
    }
    this.#applyDir(e, path, node);
  }

  #applyDir(e: TarEntry, path: string | Buffer, node: DirNode): void {
    fs.lchownSync(path, e.uid, e.gid);
    fs.chmodSync(path, e.mode); // a verified directory: nothing to follow
    this.#xattrs(e, path, false);
    node.times = times(e);
    node.setgid = (e.mode & 0o2000) !== 0;
  }

  /** Whether an entry created in `parent` must be chowned to get the entry's owner. */
  #needsChown(e: TarEntry, parent: DirNode): boolean {
    return !(this.#asRoot && e.uid === 0 && e.gid === 0 && !parent.setgid);
  }

  #whiteout(e: TarEntry, parentRel: string, parent: DirNode, base: string): void {
    const dir = this.#path(parentRel);
    if (base === WHITEOUT_OPAQUE) return lsetxattr(dir, OPAQUE_XATTR, Buffer.from('y'));
    if (base.startsWith(WHITEOUT_META_PREFIX)) return; // other AUFS metadata
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') {
      throw new UnsafeLayerError(e.name, `whiteout '${printable(e.name)}' names no file`);
    }
    const rel = parentRel === '' ? name : `${parentRel}/${name}`;
    const path = this.#path(rel);
    this.#create(path, parent, name, () => this.#mknod(path, S_IFCHR, 0n));
    fs.lchownSync(path, e.uid, e.gid);
  }

  #hardlink(e: TarEntry, rel: string, path: string | Buffer, parent: DirNode, base: string): void {
    const show = `hardlink '${printable(e.name)}' -> '${printable(e.linkname)}'`;
    let targetRel: string;
    try {
      targetRel = cleanEntryName(e.linkname);
    } catch (err) {
      throw new UnsafeLayerError(e.name, `${show} points outside the layer; the layer was rejected`, { cause: err });
    }
    if (targetRel === '') throw new UnsafeLayerError(e.name, `${show} targets the layer's root`);
    if (targetRel === rel) return;
    const slash = targetRel.lastIndexOf('/');
    this.#lookupDir(slash === -1 ? '' : targetRel.slice(0, slash), e.name, show);
    const target = this.#path(targetRel);
    const st = fs.lstatSync(target, { throwIfNoEntry: false });
    if (st === undefined) throw new UnsafeLayerError(e.name, `${show}: the target is not in this layer`);
    if (st.isDirectory()) throw new UnsafeLayerError(e.name, `${show}: the target is a directory`);
    // link(2) does not follow a symlink target: linking to a symlink links the symlink itself.
    this.#create(path, parent, base, () => fs.linkSync(target, path));
  }

  #node(e: TarEntry, path: string | Buffer, parent: DirNode, base: string): void {
    const kind = e.type === 'character-device' ? S_IFCHR : e.type === 'block-device' ? S_IFBLK : S_IFIFO;
    const dev = kind === S_IFIFO ? 0n : makedev(e.devmajor, e.devminor);
    this.#create(path, parent, base, () => this.#mknod(path, kind | (e.mode & 0o777), dev));
    fs.lchownSync(path, e.uid, e.gid);
    fs.chmodSync(path, e.mode); // a node just created: not a symlink
    this.#xattrs(e, path, false);
    fs.lutimesSync(path, ...times(e));
  }

  /** mknod(2), through an ASCII scratch name when the path is raw bytes (the binding takes text). */
  #mknod(path: string | Buffer, mode: number, dev: bigint): void {
    if (typeof path === 'string') return mknod(path, mode, dev);
    const scratch = `${this.#root}.node`;
    mknod(scratch, mode, dev);
    fs.renameSync(scratch, path);
  }

  /**
   * Runs `make` to create a final component; when something is already there, removes it (unless
   * `keepDir` and it is a directory: then returns true) and runs `make` again.
   */
  #create<T>(path: string | Buffer, parent: DirNode, base: string, make: () => T, keepDir = false): T | undefined {
    try {
      return make();
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
    }
    const st = fs.lstatSync(path);
    if (st.isDirectory()) {
      if (keepDir) return undefined;
      fs.rmSync(path, { recursive: true, force: true }); // rm never follows symlinks inside
      parent.children.delete(base);
      this.#lastParent = undefined;
    } else {
      fs.unlinkSync(path);
    }
    return make();
  }

  /** Walks (creating missing directories, as `mkdir -p` with 0755) to the directory `rel`. */
  #ensureDir(rel: string, entry: string): DirNode {
    if (rel === '') return this.#tree;
    if (this.#lastParent?.[0] === rel) return this.#lastParent[1];
    const node = this.#walk(rel, entry, (path) => {
      fs.mkdirSync(path, 0o755);
      fs.chmodSync(path, 0o755);
    }, `layer entry '${printable(entry)}'`);
    this.#lastParent = [rel, node];
    return node;
  }

  /** Walks to the existing directory `rel` without creating anything. */
  #lookupDir(rel: string, entry: string, show: string): DirNode {
    return this.#walk(rel, entry, () => {
      throw new UnsafeLayerError(entry, `${show}: the target is not in this layer`);
    }, show);
  }

  #walk(rel: string, entry: string, missing: (path: string | Buffer) => void, show: string): DirNode {
    let node = this.#tree;
    if (rel === '') return node;
    let cur = '';
    for (const part of rel.split('/')) {
      cur = cur === '' ? part : `${cur}/${part}`;
      let child = node.children.get(part);
      if (child === undefined) {
        const path = this.#path(cur);
        const st = fs.lstatSync(path, { throwIfNoEntry: false });
        if (st === undefined) missing(path);
        else if (st.isSymbolicLink()) {
          throw new UnsafeLayerError(entry, `${show} would be written through the symlink '${printable(cur)}'; the layer was rejected`);
        } else if (!st.isDirectory()) {
          throw new UnsafeLayerError(entry, `${show}: '${printable(cur)}' is not a directory`);
        }
        child = { children: new Map(), setgid: st !== undefined && (st.mode & 0o2000) !== 0 };
        node.children.set(part, child);
      }
      node = child;
    }
    return node;
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

function toFs(binary: string): string | Buffer {
  return ASCII.test(binary) ? binary : Buffer.from(binary, 'latin1');
}

/** [atime, mtime] as Docker sets them: the access time is never before the modification time. */
function times(e: TarEntry): [number, number] {
  return [e.atime === undefined || e.atime < e.mtime ? e.mtime : e.atime, e.mtime];
}
