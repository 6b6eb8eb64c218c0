/**
 * A streaming, synchronous tar parser: feed it chunks, it calls a {@link TarSink} for each entry,
 * its content and every raw header byte. No streams and no copies of file content (the sink gets
 * sub-arrays of the input chunks), so an unpacker built on it runs at the speed of its system
 * calls.
 *
 * Formats: ustar (with the 155-byte prefix), GNU (`L`/`K` long names, base-256 numbers), PAX
 * (`x` per-entry and `g` global records: path, linkpath, size, uid, gid, mtime, atime, uname,
 * gname, `SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`) and v7. Like Go's archive/tar (which Docker uses),
 * links, directories, devices and fifos never carry content whatever their size field says, and
 * the archive ends at two zero blocks; whatever follows is ignored (but still passed to
 * {@link TarSink.raw}).
 *
 * Names are kept as raw bytes in "binary strings" (one char per byte, `latin1`), so that names
 * that are not UTF-8 survive; convert with `Buffer.from(name, 'latin1')` at the file-system edge.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

/** The kinds of entry a layer can contain. */
export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

/** One archive member, with every extension applied. */
export interface TarEntry {
  /** The member name as stored (binary string), not normalised. */
  name: string;
  /** What the member is. */
  type: TarEntryType;
  /** Permission bits including setuid, setgid and sticky (`mode & 0o7777`). */
  mode: number;
  /** Owner user id. */
  uid: number;
  /** Owner group id. */
  gid: number;
  /** Content length in bytes; 0 for everything but files. */
  size: number;
  /** Modification time, seconds since the epoch (fractional with PAX). */
  mtime: number;
  /** Access time in seconds when a PAX record gives one; absent otherwise. */
  atime: number | undefined;
  /** Symlink target or hardlink target name (binary string); empty for other types. */
  linkname: string;
  /** Device major number (devices only). */
  devmajor: number;
  /** Device minor number (devices only). */
  devminor: number;
  /** Extended attributes from PAX records (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`), raw values. */
  xattrs: Map<string, Buffer>;
}

/** Receives the parser's output, synchronously and in archive order. */
export interface TarSink {
  /** A member's header is complete; its content (if any) follows through {@link TarSink.data}. */
  entry(entry: TarEntry): void;
  /** A piece of the current member's content (a view into the input chunk: copy to keep it). */
  data(chunk: Uint8Array): void;
  /** The current member's content is complete. */
  entryEnd(): void;
  /** Every byte that is not member content (headers, extension records, padding, trailer). */
  raw?(chunk: Uint8Array): void;
}

const BLOCK = 512;
/** Largest PAX or GNU long-name record accepted (a guard against memory exhaustion). */
const MAX_EXTENSION = 1 << 20;

const enum State {
  Header,
  Extension,
  Data,
  Padding,
  Done,
}

function malformed(why: string): InvalidArgumentError {
  return new InvalidArgumentError('layer', `not a valid tar archive: ${why}`);
}

function readString(buf: Uint8Array, off: number, len: number): string {
  let end = off;
  const max = off + len;
  while (end < max && buf[end] !== 0) end++;
  return Buffer.from(buf.buffer, buf.byteOffset + off, end - off).toString('latin1');
}

function readNumber(buf: Uint8Array, off: number, len: number, field: string): number {
  const first = buf[off] ?? 0;
  if (first & 0x80) {
    if (first === 0xff) throw malformed(`negative ${field}`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (buf[off + i] ?? 0);
    if (!Number.isSafeInteger(v)) throw malformed(`${field} too large`);
    return v;
  }
  const s = readString(buf, off, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw malformed(`bad ${field} field '${s}'`);
  return parseInt(s, 8);
}

function isZeroBlock(buf: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

function checksumOk(buf: Uint8Array): boolean {
  const stored = readNumber(buf, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (buf[i] ?? 0);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** Parses PAX extended-header records (`"%d %s=%s\n"`) into a map of raw values. */
export function parsePax(data: Buffer, into: Map<string, Buffer>): void {
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break;
    const sp = data.indexOf(0x20, off);
    if (sp === -1) throw malformed('bad PAX record');
    const len = Number(data.toString('latin1', off, sp));
    if (!Number.isSafeInteger(len) || len <= sp - off + 1 || off + len > data.length || data[off + len - 1] !== 0x0a) {
      throw malformed('bad PAX record length');
    }
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq === -1 || eq >= off + len - 1) throw malformed('bad PAX record');
    into.set(data.toString('latin1', sp + 1, eq), data.subarray(eq + 1, off + len - 1));
    off += len;
  }
}

function paxNumber(v: Buffer, field: string, fractional = false): number {
  const s = v.toString('latin1');
  if (!(fractional ? /^-?[0-9]+(\.[0-9]+)?$/ : /^[0-9]+$/).test(s)) throw malformed(`bad PAX ${field} '${s}'`);
  const n = Number(s);
  if (!Number.isFinite(n) || (!fractional && !Number.isSafeInteger(n))) throw malformed(`PAX ${field} out of range`);
  return n;
}

const TYPES: Readonly<Record<string, TarEntryType>> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

/**
 * The parser. Call {@link TarReader.write} with each chunk, then {@link TarReader.end}; errors
 * (malformed archives) are thrown from those calls as {@link InvalidArgumentError}s.
 */
export class TarReader {
  readonly #sink: TarSink;
  #state = State.Header;
  readonly #block = new Uint8Array(BLOCK);
  #blockFill = 0;
  #remaining = 0;
  #padding = 0;
  #extKind = '';
  #ext: Buffer | undefined;
  #extFill = 0;
  #pax = new Map<string, Buffer>();
  readonly #globalPax = new Map<string, Buffer>();
  #longName: string | undefined;
  #longLink: string | undefined;
  #sawZero = false;

  /** A parser that reports to `sink`. */
  constructor(sink: TarSink) {
    this.#sink = sink;
  }

  /** Whether the end-of-archive marker was seen. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Feeds the next chunk of the archive. */
  write(chunk: Uint8Array): void {
    let off = 0;
    const n = chunk.byteLength;
    while (off < n) {
      switch (this.#state) {
        case State.Header: {
          const take = Math.min(BLOCK - this.#blockFill, n - off);
          this.#block.set(chunk.subarray(off, off + take), this.#blockFill);
          this.#blockFill += take;
          off += take;
          if (this.#blockFill === BLOCK) {
            this.#blockFill = 0;
            this.#sink.raw?.(this.#block);
            this.#header();
          }
          break;
        }
        case State.Extension: {
          const ext = this.#ext as Buffer;
          const take = Math.min(ext.length - this.#extFill, n - off);
          ext.set(chunk.subarray(off, off + take), this.#extFill);
          this.#sink.raw?.(chunk.subarray(off, off + take));
          this.#extFill += take;
          off += take;
          if (this.#extFill === ext.length) this.#extension();
          break;
        }
        case State.Data: {
          const take = Math.min(this.#remaining, n - off);
          this.#sink.data(chunk.subarray(off, off + take));
          this.#remaining -= take;
          off += take;
          if (this.#remaining === 0) this.#endData();
          break;
        }
        case State.Padding: {
          const take = Math.min(this.#padding, n - off);
          this.#sink.raw?.(chunk.subarray(off, off + take));
          this.#padding -= take;
          off += take;
          if (this.#padding === 0) this.#state = State.Header;
          break;
        }
        case State.Done:
          this.#sink.raw?.(chunk.subarray(off));
          return;
      }
    }
  }

  /** Signals the end of input; throws when the archive is truncated. */
  end(): void {
    // Like Go's archive/tar, a clean end of input at a header boundary ends the archive too.
    if (this.#state === State.Done || (this.#state === State.Header && this.#blockFill === 0)) return;
    throw malformed('unexpected end of data (truncated archive)');
  }

  #header(): void {
    const b = this.#block;
    if (isZeroBlock(b)) {
      if (this.#sawZero) this.#state = State.Done;
      this.#sawZero = true;
      return;
    }
    if (this.#sawZero) throw malformed('data after a zero block');
    if (!checksumOk(b)) throw malformed('header checksum mismatch (not a tar, or corrupted)');
    const flag = String.fromCharCode(b[156] ?? 0);
    const size = readNumber(b, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_EXTENSION) throw malformed(`extended header of ${size} bytes is too large`);
      this.#extKind = flag;
      this.#ext = Buffer.alloc(size);
      this.#extFill = 0;
      this.#padding = (BLOCK - (size % BLOCK)) % BLOCK;
      this.#state = State.Extension;
      if (size === 0) this.#extension();
      return;
    }
    let type = TYPES[flag];
    const ustar = readString(b, 257, 6) === 'ustar' && b[262] === 0;
    let name = readString(b, 0, 100);
    if (ustar && b[345] !== 0) name = `${readString(b, 345, 155)}/${name}`;
    if (flag === 'D') type = 'directory';
    if (type === undefined) throw malformed(`unsupported entry type '${flag}' for '${name}'`);
    if (type === 'file' && name.endsWith('/')) type = 'directory';
    const pax = this.#globalPax.size === 0 ? this.#pax : new Map([...this.#globalPax, ...this.#pax]);
    this.#pax = new Map();
    const entry: TarEntry = {
      name: this.#longName ?? name,
      type,
      mode: readNumber(b, 100, 8, 'mode') & 0o7777,
      uid: readNumber(b, 108, 8, 'uid'),
      gid: readNumber(b, 116, 8, 'gid'),
      size,
      mtime: readNumber(b, 136, 12, 'mtime'),
      atime: undefined,
      linkname: this.#longLink ?? readString(b, 157, 100),
      devmajor: type.endsWith('device') ? readNumber(b, 329, 8, 'devmajor') : 0,
      devminor: type.endsWith('device') ? readNumber(b, 337, 8, 'devminor') : 0,
      xattrs: new Map(),
    };
    this.#longName = undefined;
    this.#longLink = undefined;
    applyPax(entry, pax);
    if (type !== 'file' && flag !== 'D') entry.size = 0;
    const dataSize = flag === 'D' ? size : entry.size;
    if (flag === 'D') entry.size = 0;
    this.#sink.entry(entry);
    this.#remaining = dataSize;
    this.#padding = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    if (flag === 'D') {
      // A GNU dump directory's content is a listing, not data: hand it to raw() and skip it.
      this.#sink.entryEnd();
      this.#ext = Buffer.alloc(Math.min(dataSize, MAX_EXTENSION));
      if (dataSize > MAX_EXTENSION) throw malformed('GNU dump directory record too large');
      this.#extKind = 'D';
      this.#extFill = 0;
      this.#state = State.Extension;
      if (dataSize === 0) this.#extension();
      return;
    }
    if (dataSize === 0) this.#endData();
    else this.#state = State.Data;
  }

  #extension(): void {
    const data = this.#ext as Buffer;
    this.#ext = undefined;
    switch (this.#extKind) {
      case 'x':
        parsePax(data, this.#pax);
        break;
      case 'g':
        parsePax(data, this.#globalPax);
        for (const [k, v] of this.#globalPax) if (v.length === 0) this.#globalPax.delete(k);
        break;
      case 'L':
        this.#longName = readString(data, 0, data.length);
        break;
      case 'K':
        this.#longLink = readString(data, 0, data.length);
        break;
    }
    this.#state = this.#padding === 0 ? State.Header : State.Padding;
  }

  #endData(): void {
    this.#sink.entryEnd();
    this.#state = this.#padding === 0 ? State.Header : State.Padding;
  }
}

function applyPax(entry: TarEntry, pax: Map<string, Buffer>): void {
  for (const [key, value] of pax) {
    switch (key) {
      case 'path':
        entry.name = value.toString('latin1');
        break;
      case 'linkpath':
        entry.linkname = value.toString('latin1');
        break;
      case 'size':
        entry.size = paxNumber(value, key);
        break;
      case 'uid':
        entry.uid = paxNumber(value, key);
        break;
      case 'gid':
        entry.gid = paxNumber(value, key);
        break;
      case 'mtime':
        entry.mtime = paxNumber(value, key, true);
        break;
      case 'atime':
        entry.atime = paxNumber(value, key, true);
        break;
      default:
        if (key.startsWith('SCHILY.xattr.')) entry.xattrs.set(utf8(key.slice(13)), Buffer.from(value));
        else if (key.startsWith('LIBARCHIVE.xattr.')) {
          let name: string;
          try {
            name = decodeURIComponent(utf8(key.slice(17)));
          } catch {
            throw malformed(`bad LIBARCHIVE.xattr name in '${entry.name}'`);
          }
          entry.xattrs.set(name, Buffer.from(value.toString('latin1'), 'base64'));
        } else if (key.startsWith('GNU.sparse.')) throw malformed(`sparse file '${entry.name}' is not supported`);
    }
  }
}

/** Re-decodes a binary string as UTF-8 (xattr names are passed to the kernel as UTF-8). */
function utf8(binary: string): string {
  return Buffer.from(binary, 'latin1').toString('utf8');
}
