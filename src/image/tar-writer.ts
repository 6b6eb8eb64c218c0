/**
 * Writing tar archives: a header encoder (ustar, with a PAX record when a field does not fit)
 * and {@link packDirectory}, which streams a directory tree as a deterministic archive (sorted
 * names, whole-second times, hardlinks detected by inode, `security.capability` kept as Docker
 * keeps it). The output reads back with {@link TarReader}, GNU tar and Go's archive/tar.
 *
 * Names are binary strings (one char per byte), as in `tar-reader.ts`.
 *
 * @module
 */
import * as fs from 'node:fs';
import { ConflictError } from '../errors.js';
import { O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW } from '../kernel/constants.js';
import { lgetxattr } from '../kernel/xattr.js';
import { errnoOf, fdPath, printable } from './extract-paths.js';
import type { TarEntry, TarEntryType } from './tar-reader.js';

/**
 * The fields {@link encodeHeader} writes: name, type, mode, owner and size as a {@link TarEntry}
 * has them (a directory's name gets a trailing `/`; only a file's size is written), and the rest.
 */
export interface TarHeader extends Pick<TarEntry, 'name' | 'type' | 'mode' | 'uid' | 'gid' | 'size'> {
  /** Modification time in whole seconds. */
  mtime: number;
  /** Link target (symlinks, hardlinks), binary string. */
  linkname?: string;
  /** Device numbers (devices only). */
  devmajor?: number;
  /** Device numbers (devices only). */
  devminor?: number;
  /** Extended attributes, written as `SCHILY.xattr.<name>` PAX records. */
  xattrs?: Map<string, Buffer>;
}

const FLAGS: Readonly<Record<TarEntryType, string>> = {
  file: '0',
  link: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
};

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

function octal(buf: Buffer, off: number, width: number, value: number): void {
  buf.write(`${value.toString(8).padStart(width - 1, '0')}\0`, off, 'latin1');
}

/** Splits a long name into ustar prefix and name, or returns undefined when it cannot be. */
function splitName(name: string): [prefix: string, rest: string] | undefined {
  if (name.length <= 100) return ['', name];
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return [prefix, rest];
    if (prefix.length > 155) break;
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len++;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function ustar(h: TarHeader, name: string, prefix: string, flag: string, linkname: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'latin1');
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, Math.min(h.uid, MAX_OCTAL_7));
  octal(b, 116, 8, Math.min(h.gid, MAX_OCTAL_7));
  octal(b, 124, 12, Math.min(size, MAX_OCTAL_11));
  octal(b, 136, 12, Math.min(Math.max(0, Math.floor(h.mtime)), MAX_OCTAL_11));
  b.write('        ', 148, 'latin1');
  b.write(flag, 156, 'latin1');
  b.write(linkname, 157, 100, 'latin1');
  b.write('ustar\u000000', 257, 'latin1');
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  b.write(prefix, 345, 155, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i] ?? 0;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** Encodes one member's header block(s): a PAX record first when a field needs one. */
export function encodeHeader(h: TarHeader): Buffer {
  const linkname = h.linkname ?? '';
  const size = h.type === 'file' ? h.size : 0;
  const records: Buffer[] = [];
  const split = splitName(h.name);
  if (split === undefined) records.push(paxRecord('path', Buffer.from(h.name, 'latin1')));
  if (linkname.length > 100) records.push(paxRecord('linkpath', Buffer.from(linkname, 'latin1')));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', Buffer.from(String(size))));
  if (h.uid > MAX_OCTAL_7) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCTAL_7) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  for (const [k, v] of h.xattrs ?? [])
    records.push(paxRecord(`SCHILY.xattr.${Buffer.from(k, 'utf8').toString('latin1')}`, v));
  const [prefix, name] = split ?? ['', h.name.slice(0, 100)];
  const main = ustar(h, name, prefix, FLAGS[h.type], linkname.slice(0, 100), size);
  if (records.length === 0) return main;
  const pax = Buffer.concat(records);
  const base = h.name
    .replace(/\/$/, '')
    .slice(h.name.replace(/\/$/, '').lastIndexOf('/') + 1)
    .slice(0, 80);
  const paxHeader = ustar({ ...h, mode: 0o644 }, `PaxHeaders/${base}`, '', 'x', '', pax.length);
  return Buffer.concat([paxHeader, pax, Buffer.alloc((512 - (pax.length % 512)) % 512), main]);
}

/** Two zero blocks: the end of an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);

const CHUNK = 1 << 18;

/** One entry of a walk: its name in the archive (binary string) and what `lstat` said. */
export interface WalkItem {
  /** Archive name relative to the walk's root (binary string), without a trailing `/`. */
  name: string;
  /** Path to read it from (never followed when it is a symlink). */
  path: Buffer;
  /** Its `lstat`. */
  st: fs.Stats;
  /** An overlayfs whiteout (to be written as a `.wh.` entry). */
  whiteout?: boolean;
  /** An opaque directory (to be followed by a `.wh..wh..opq` entry). */
  opaque?: boolean;
}

/**
 * Streams walk items as a tar archive. A whiteout becomes an empty `.wh.NAME` file and an opaque
 * directory is followed by `NAME/.wh..wh..opq`, as in an image layer.
 */
export async function* packItems(items: Iterable<WalkItem>): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  let out: Buffer[] = [];
  let length = 0;
  const push = (b: Buffer): void => {
    out.push(b);
    length += b.length;
  };
  const take = (): Buffer => {
    const b = Buffer.concat(out, length);
    out = [];
    length = 0;
    return b;
  };
  const marker = (name: string, st: fs.Stats): Buffer =>
    encodeHeader({
      name,
      type: 'file',
      mode: 0,
      uid: st.uid,
      gid: st.gid,
      size: 0,
      mtime: Math.floor(st.mtimeMs / 1000),
    });
  for (const item of items) {
    if (item.whiteout) {
      const slash = item.name.lastIndexOf('/');
      push(marker(`${item.name.slice(0, slash + 1)}.wh.${item.name.slice(slash + 1)}`, item.st));
    } else {
      const h = tarHeaderFor(item.st, item.name, item.path, links);
      if (h.type !== 'file') {
        push(encodeHeader(h));
        if (item.opaque) push(marker(`${item.name}/.wh..wh..opq`, item.st));
      } else {
        // O_NONBLOCK: a FIFO swapped in meanwhile must not block the copy.
        const fd = fs.openSync(item.path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        try {
          const now = fs.fstatSync(fd);
          if (!now.isFile())
            throw new ConflictError('CONFLICT', `'${printable(item.name)}' changed while it was being copied; retry`);
          // The size in the header is the one of the file opened (it may have changed since lstat).
          h.size = now.size;
          push(encodeHeader(h));
          let left = h.size;
          while (left > 0) {
            const buf = Buffer.allocUnsafe(Math.min(left, CHUNK));
            const n = fs.readSync(fd, buf, 0, buf.length, null);
            if (n === 0) break;
            push(n === buf.length ? buf : buf.subarray(0, n));
            left -= n;
            if (length >= CHUNK) yield take();
          }
          if (left > 0) push(Buffer.alloc(left));
        } finally {
          fs.closeSync(fd);
        }
        const pad = (512 - (h.size % 512)) % 512;
        if (pad > 0) push(Buffer.alloc(pad));
      }
    }
    if (length >= CHUNK) yield take();
  }
  push(END_OF_ARCHIVE);
  yield take();
}

/**
 * Walks `name` under the directory fd `parentFd` and everything below it, through fds: each
 * directory is opened with `O_NOFOLLOW` under its already-open parent, so a symlink swapped in
 * meanwhile is never followed.
 */
export function* walkAt(parentFd: number, base: Buffer, name: string): Generator<WalkItem> {
  const path = fdPath(parentFd, base);
  const st = fs.lstatSync(path);
  if (st.isSocket()) return;
  yield { name, path, st };
  if (!st.isDirectory()) return;
  const dfd = fs.openSync(path, fs.constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  try {
    for (const n of fs.readdirSync(fdPath(dfd, ''), { encoding: 'buffer' }).sort(Buffer.compare)) {
      const child = name === '' ? n.toString('latin1') : `${name}/${n.toString('latin1')}`;
      try {
        yield* walkAt(dfd, n, child);
      } catch (e) {
        if (errnoOf(e) !== 'ENOENT') throw e; // removed meanwhile
      }
    }
  } finally {
    fs.closeSync(dfd);
  }
}

/**
 * Walks everything below the directory fd `dfd` (an fd open for reading; not the directory
 * itself), names relative to it, through fds as {@link walkAt} does.
 */
export function* walkBelow(dfd: number): Generator<WalkItem> {
  for (const n of fs.readdirSync(fdPath(dfd, ''), { encoding: 'buffer' }).sort(Buffer.compare))
    yield* walkAt(dfd, n, n.toString('latin1'));
}

/**
 * Streams the tree under `dir` as a tar archive (names relative to `dir`, without the root
 * itself). Sockets are skipped, as GNU tar skips them.
 */
export async function* packDirectory(dir: string): AsyncGenerator<Buffer> {
  const dfd = fs.openSync(dir, fs.constants.O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  try {
    yield* packItems(walkBelow(dfd));
  } finally {
    fs.closeSync(dfd);
  }
}

/**
 * The tar header for an entry found on disk (`st` from lstat, `abs` its path); remembers inodes in
 * `links` to turn later names of the same file into hardlinks. Keeps `security.capability`.
 */
export function tarHeaderFor(st: fs.Stats, name: string, abs: Buffer | string, links: Map<string, string>): TarHeader {
  const h: TarHeader = {
    name,
    type: 'file',
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: Math.floor(st.mtimeMs / 1000),
  };
  const inode = `${st.dev}:${st.ino}`;
  if (st.isDirectory()) {
    h.type = 'directory';
    h.name += '/';
  } else if (st.isSymbolicLink()) {
    h.type = 'symlink';
    h.linkname = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
  } else if (st.nlink > 1 && links.has(inode)) {
    h.type = 'link';
    h.linkname = links.get(inode);
  } else {
    if (st.nlink > 1) links.set(inode, name);
    if (st.isFile()) h.size = st.size;
    else if (st.isFIFO()) h.type = 'fifo';
    else {
      const rdev = BigInt(st.rdev);
      h.type = st.isCharacterDevice() ? 'character-device' : 'block-device';
      h.devmajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
      h.devminor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    }
  }
  if (h.type === 'file' || h.type === 'directory') {
    const cap = lgetxattr(abs, 'security.capability');
    if (cap !== undefined) h.xattrs = new Map([['security.capability', cap]]);
  }
  return h;
}
