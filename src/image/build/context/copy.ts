/**
 * COPY's file work, with Docker/BuildKit's rules (see `README.md`): sources are read in place
 * (`select.ts`) and written by the project's one extractor of hostile trees (`TarExtractor` of
 * `image/layer-writer.ts`, fed entries directly, no tar in between) under a destination directory
 * resolved inside the destination root (`root.ts`). Nothing is read or written outside the two
 * roots, whatever symlinks earlier steps left in them.
 *
 * @module
 */
import * as fs from 'node:fs';
import { ConflictError, InvalidArgumentError } from '../../../errors.js';
import { O_NOFOLLOW } from '../../../kernel/constants.js';
import { lgetxattr } from '../../../kernel/xattr.js';
import { TarExtractor } from '../../layer-writer.js';
import type { TarEntry, TarEntryType } from '../../tar-reader.js';
import { printable } from '../../extract-paths.js';
import { cleanPath } from './ignore.js';
import { closeFd, ensureDirInRoot, openRootDir, statInRoot, type Owner } from './root.js';
import {
  CAPABILITY,
  READ_FLAGS,
  checkSelection,
  closeSelection,
  openSelection,
  walkTree,
  type Selection,
  type SourceSelection,
  type TopSource,
} from './select.js';

/** The options of {@link copyInto}. */
export interface CopyOptions extends SourceSelection {
  /** The root the copy writes into: a staging overlay's root, or an empty directory for `--link`. */
  destRoot: string;
  /** The destination, absolute inside `destRoot` (already joined with WORKDIR); a trailing `/` (or `/.`) means "into". */
  dest: string;
  /** `--chown`, resolved: owner of everything copied and of the directories the copy makes. */
  chown?: Owner;
  /** `--chmod`: permission bits of the copied files and directories. */
  chmod?: number;
}

/** What a copy did. */
export interface CopyResult {
  /** Entries written (files, directories, symlinks, nodes). */
  entries: number;
  /** Regular files written. */
  files: number;
  /** Bytes of file content written. */
  bytes: number;
}

const CHUNK = 1 << 20;

/** Whether `dest` says "into a directory": it ends in `/` or `/.`, or is the root. */
function namesDirectory(dest: string): boolean {
  return dest.endsWith('/') || dest.endsWith('/.') || cleanPath(dest) === '/';
}

function checkOptions(o: CopyOptions): void {
  if (typeof o.destRoot !== 'string' || o.destRoot === '')
    throw new InvalidArgumentError('destRoot', 'must be a directory path');
  if (typeof o.dest !== 'string' || !o.dest.startsWith('/'))
    throw new InvalidArgumentError('dest', `must be an absolute path inside the root, not '${o.dest}'`);
  if (o.chmod !== undefined && !(Number.isInteger(o.chmod) && o.chmod >= 0 && o.chmod <= 0o7777))
    throw new InvalidArgumentError('chmod', `must be permission bits (0 to 0o7777), not ${o.chmod}`);
  const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xfffffffe;
  if (o.chown !== undefined && !(ok(o.chown.uid) && ok(o.chown.gid)))
    throw new InvalidArgumentError('chown', 'uid and gid must be integers from 0 to 4294967294');
}

/** Writes entries read from the source through one extractor rooted at a destination directory. */
class Writer {
  readonly result: CopyResult = { entries: 0, files: 0, bytes: 0 };
  readonly #o: CopyOptions;
  readonly #buf = Buffer.allocUnsafe(CHUNK);
  #ex: TarExtractor | undefined;
  /** Inode → name, to write later names of a file as hardlinks (within one extractor). */
  #links = new Map<string, string>();

  constructor(o: CopyOptions) {
    this.#o = o;
  }

  /** Directs the next entries to the directory fd `dirFd` (entry names relative to it). */
  begin(dirFd: number): void {
    this.end();
    this.#ex = new TarExtractor(dirFd, 'copy');
    this.#links = new Map();
  }

  /** Finishes the current extractor (sets directory times). */
  end(): void {
    this.#ex?.finish();
    this.#ex = undefined;
  }

  abort(): void {
    this.#ex?.abort();
    this.#ex = undefined;
  }

  /** Writes the entry `name` found at `path` (lstat `st`; a top-level source is `fstat`ed, symlinks already followed). */
  write(name: string, path: Buffer, st: fs.Stats, top?: TopSource): void {
    const ex = this.#ex as TarExtractor;
    const e = this.#entry(name, path, st);
    if (e === undefined) return;
    this.result.entries++;
    if (e.type !== 'file') {
      ex.entry(e);
      return;
    }
    // A top-level source is read through its fd's magic link, which O_NOFOLLOW would refuse.
    const fd = fs.openSync(path, top ? READ_FLAGS & ~O_NOFOLLOW : READ_FLAGS);
    const cap = top ? top.capability : lgetxattr(path, CAPABILITY);
    if (cap !== undefined) e.xattrs.set(CAPABILITY, cap);
    try {
      const now = fs.fstatSync(fd);
      if (!now.isFile() || now.ino !== st.ino)
        throw new ConflictError('CONFLICT', `'${printable(name)}' changed while it was being copied; retry`);
      e.size = now.size;
      ex.entry(e);
      let n: number;
      while ((n = fs.readSync(fd, this.#buf, 0, CHUNK, null)) > 0) {
        ex.data(this.#buf.subarray(0, n));
        this.result.bytes += n;
      }
      ex.entryEnd();
      this.result.files++;
    } finally {
      fs.closeSync(fd);
    }
  }

  #entry(name: string, path: Buffer, st: fs.Stats): TarEntry | undefined {
    const o = this.#o;
    const owner = o.chown ?? (o.keepOwners ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 });
    let type: TarEntryType;
    let linkname = '';
    let devmajor = 0;
    let devminor = 0;
    if (st.isDirectory()) type = 'directory';
    else if (st.isSymbolicLink()) {
      type = 'symlink';
      linkname = fs.readlinkSync(path, { encoding: 'buffer' }).toString('latin1');
    } else if (st.isFile()) {
      type = 'file';
      const inode = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? this.#links.get(inode) : undefined;
      if (first !== undefined) {
        type = 'link';
        linkname = first;
      } else if (st.nlink > 1) this.#links.set(inode, name);
    } else if (st.isFIFO()) type = 'fifo';
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      type = st.isCharacterDevice() ? 'character-device' : 'block-device';
      const rdev = BigInt(st.rdev);
      devmajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
      devminor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    } else return undefined; // a socket
    const mode = o.chmod !== undefined && type !== 'symlink' ? o.chmod : st.mode & 0o7777;
    const mtime = st.mtimeMs / 1000;
    return {
      name,
      type,
      mode,
      ...owner,
      size: 0,
      mtime,
      atime: mtime,
      linkname,
      devmajor,
      devminor,
      xattrs: new Map(),
    };
  }
}

/** The parent directory and base name of a cleaned absolute path (`/` has no base). */
function splitDest(dest: string): [dir: string, base: string] {
  const c = cleanPath(dest);
  const slash = c.lastIndexOf('/');
  return [c.slice(0, slash) || '/', c.slice(slash + 1)];
}

/** Copies one source (`top`) to its place under the destination. */
function copyTop(
  srcFd: number,
  destFd: number,
  top: TopSource,
  sel: Selection,
  into: boolean,
  w: Writer,
  o: CopyOptions,
): void {
  const dir = top.st.isDirectory();
  const src = Buffer.from(`/proc/self/fd/${top.fd}`);
  if (o.parents || (into && !dir)) {
    // Into the destination directory, under the kept path (with --parents, its parents copied too).
    const dfd = ensureDirInRoot(destFd, o.dest, o.chown, 'dest');
    try {
      w.begin(dfd);
      const parts = top.keep === '' ? [] : top.keep.split('/');
      const relParts = top.rel.split('/');
      for (let i = 1; i < parts.length; i++) {
        // --parents: the source's directories above the kept entry, with their own metadata.
        const up = statInRoot(srcFd, relParts.slice(0, relParts.length - parts.length + i).join('/'));
        if (up?.isDirectory()) w.write(parts.slice(0, i).join('/'), src, up);
      }
      if (parts.length > 0) w.write(top.keep, src, top.st, top);
      if (dir) for (const it of walkTree(top, sel, o.signal)) w.write(`${top.keep}/${it.name}`, it.path, it.st);
      w.end();
    } finally {
      closeFd(dfd);
    }
    return;
  }
  const [parent, base] = splitDest(o.dest);
  const existing = statInRoot(destFd, o.dest);
  if (dir && existing !== undefined) {
    if (!existing.isDirectory())
      throw new InvalidArgumentError(
        'dest',
        `cannot copy the directory '${top.given}' to '${o.dest}': not a directory`,
      );
    const dfd = ensureDirInRoot(destFd, o.dest, o.chown, 'dest');
    try {
      w.begin(dfd);
      for (const it of walkTree(top, sel, o.signal)) w.write(it.name, it.path, it.st);
      w.end();
    } finally {
      closeFd(dfd);
    }
    return;
  }
  // A new directory (its contents below it), or a file under the destination's name.
  const pfd = ensureDirInRoot(destFd, parent, o.chown, 'dest');
  try {
    w.begin(pfd);
    w.write(base, src, top.st, top);
    if (dir) for (const it of walkTree(top, sel, o.signal)) w.write(`${base}/${it.name}`, it.path, it.st);
    w.end();
  } finally {
    closeFd(pfd);
  }
}

/**
 * Copies `sources` from `sourceRoot` to `dest` inside `destRoot`, as a Dockerfile COPY does
 * (rules in `README.md`): a directory source copies its contents; a symlink named as a source is
 * followed inside `sourceRoot`, symlinks below a directory source stay links; `dest` ending in
 * `/` or naming an existing directory means "into", and several sources need that trailing `/`;
 * missing parents are made (0755, owned by `chown`); modes and mtimes are kept, owners become
 * 0:0 (or `chown`, or the source's with `keepOwners`); `chmod` sets the copied files' and
 * directories' modes.
 *
 * @throws InvalidArgumentError for bad options or a destination that cannot take the sources;
 *   NotFoundError for a missing source or a glob that matches nothing; UnsafeLayerError when a
 *   write would pass through a symlink below the destination directory.
 */
export async function copyInto(options: CopyOptions): Promise<CopyResult> {
  const exclude = checkSelection(options);
  checkOptions(options);
  options.signal?.throwIfAborted();
  const srcFd = openRootDir(options.sourceRoot, 'sourceRoot');
  let destFd: number | undefined;
  let sel: Selection | undefined;
  const w = new Writer(options);
  try {
    destFd = openRootDir(options.destRoot, 'destRoot');
    sel = openSelection(srcFd, options, exclude);
    const into = namesDirectory(options.dest) || statInRoot(destFd, options.dest)?.isDirectory() === true;
    if (sel.tops.length > 1 && !namesDirectory(options.dest))
      throw new InvalidArgumentError(
        'dest',
        `when using COPY with more than one source file, the destination must be a directory and end with a / ('${options.dest}')`,
      );
    for (const top of sel.tops) {
      options.signal?.throwIfAborted();
      copyTop(srcFd, destFd, top, sel, into, w, options);
    }
    return w.result;
  } catch (e) {
    w.abort();
    throw e;
  } finally {
    if (sel !== undefined) closeSelection(sel);
    if (destFd !== undefined) closeFd(destFd);
    closeFd(srcFd);
  }
}
