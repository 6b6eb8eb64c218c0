/**
 * Random access to the members of an image archive (the outer tar of `docker save` or of an OCI
 * layout): one scan over the headers only — member content is skipped with `pread` offsets, never
 * read — then each member is read or streamed straight from its byte range.
 *
 * The outer archive is hostile input too. Member names are cleaned as POSIX paths; a name that is
 * absolute or climbs above the archive's root, a symlink or hardlink whose target does, a link
 * loop, or a name given twice rejects the whole archive with an {@link UnsafeLayerError}. Nothing
 * is ever extracted to disk: members are only read by offset, and paths that documents inside the
 * archive (`manifest.json`, `index.json`) name are resolved through {@link ArchiveIndex.resolve},
 * which applies the same rules.
 *
 * @module
 */
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { InvalidArgumentError, UnsafeLayerError } from '../../errors.js';
import { printable } from '../extract-paths.js';
import { TarReader, type TarEntry } from '../tar-reader.js';

/** One member of the archive, as the scan found it. */
export interface ArchiveMember {
  /** The cleaned name (no leading `./` or `/`, no trailing `/`). */
  name: string;
  /** The member type (`file`, `directory`, `symlink`, `link`; others are kept but never read). */
  type: TarEntry['type'];
  /** Offset of the content in the archive file (files only). */
  offset: number;
  /** Content length in bytes (files only; 0 otherwise). */
  size: number;
  /** Cleaned link target: for symlinks relative to the archive root, for hardlinks as stored. */
  target: string;
}

/** A regular file of the archive after links were followed: where its bytes are. */
export interface ArchiveFile {
  /** The name it was asked for, cleaned. */
  name: string;
  /** Offset of the content in the archive file (0 in a directory layout). */
  offset: number;
  /** Content length in bytes. */
  size: number;
  /** The file on disk, in a directory layout; absent in a tar. */
  path?: string;
}

/** What the format readers need from an archive: a tar ({@link ArchiveIndex}) or a directory ({@link DirectoryLayout}). */
export interface ArchiveReader {
  /** Whether something is named `name` (after cleaning). */
  has(name: string): boolean;
  /** Finds the regular file `name` names, following links inside the archive only. */
  resolve(name: string): ArchiveFile;
  /** Reads the whole of a small file; refuses more than `limit` bytes. */
  read(file: ArchiveFile, limit?: number): Promise<Buffer>;
  /** Streams a file's content, starting `skip` bytes in. */
  stream(file: ArchiveFile, skip?: number): Readable;
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(1 << 20);
/** How many links a lookup follows before it calls it a loop. */
export const MAX_LINK_DEPTH = 16;

/** The error for a name or link that leaves the archive. */
export function unsafe(name: string, why: string): UnsafeLayerError {
  return new UnsafeLayerError(name, `the image archive is unsafe: '${printable(name)}' ${why}; it was not loaded`);
}

/**
 * Cleans a path found in the archive (a member name, a link target, or a path a manifest names).
 *
 * @throws UnsafeLayerError when it is absolute or climbs above the archive root.
 */
export function cleanArchivePath(name: string, what = 'is outside the archive'): string {
  if (name.startsWith('/')) throw unsafe(name, `${what} (absolute path)`);
  const n = posix.normalize(name).replace(/\/+$/, '');
  if (n === '..' || n.startsWith('../')) throw unsafe(name, what);
  return n === '.' ? '' : n;
}

/** The members of one archive file, by cleaned name. */
export class ArchiveIndex implements ArchiveReader {
  /** The archive file. */
  readonly path: string;
  readonly #members: Map<string, ArchiveMember>;

  private constructor(path: string, members: Map<string, ArchiveMember>) {
    this.path = path;
    this.#members = members;
  }

  /**
   * Scans the headers of the tar file at `path`.
   *
   * @throws InvalidArgumentError (field `archive`) when it is not a tar archive or is truncated;
   *   UnsafeLayerError for names that escape or repeat.
   */
  static async scan(path: string): Promise<ArchiveIndex> {
    const fh = await fs.promises.open(path, 'r');
    try {
      const { size: fileSize } = await fh.stat();
      const members = new Map<string, ArchiveMember>();
      let found: TarEntry | undefined;
      const reader = new TarReader({ entry: (e) => (found = e), data: () => undefined, entryEnd: () => undefined });
      const block = Buffer.alloc(BLOCK);
      let pos = 0;
      try {
        while (!reader.done && pos + BLOCK <= fileSize) {
          const { bytesRead } = await fh.read(block, 0, BLOCK, pos);
          if (bytesRead !== BLOCK) break;
          pos += BLOCK;
          reader.write(block);
          if (found === undefined) continue;
          const e = found;
          found = undefined;
          const contentSize = e.type === 'file' ? e.size : 0;
          add(members, e, pos, contentSize);
          if (contentSize === 0) continue;
          const padded = Math.ceil(contentSize / BLOCK) * BLOCK;
          if (pos + padded > fileSize) throw new InvalidArgumentError('archive', `'${printable(e.name)}' is truncated`);
          for (let left = padded; left > 0; left -= ZEROS.length)
            reader.write(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
          pos += padded;
        }
        reader.end();
      } catch (e) {
        if (e instanceof InvalidArgumentError && e.field === 'layer') {
          throw new InvalidArgumentError('archive', e.message.replace(/^invalid layer: /, ''), { cause: e });
        }
        throw e;
      }
      if (members.size === 0) throw new InvalidArgumentError('archive', 'the archive is empty');
      return new ArchiveIndex(path, members);
    } finally {
      await fh.close();
    }
  }

  /** Whether a member (of any type) is named `name` (after cleaning). */
  has(name: string): boolean {
    return this.#members.has(cleanArchivePath(name));
  }

  /** The members, in archive order. */
  members(): ArchiveMember[] {
    return [...this.#members.values()];
  }

  /**
   * Finds the regular file `name` names, following symlinks and hardlinks inside the archive.
   *
   * @throws UnsafeLayerError when `name` or a link on the way leaves the archive or loops;
   *   InvalidArgumentError (field `archive`) when it is missing or not a regular file.
   */
  resolve(name: string): ArchiveFile {
    const wanted = cleanArchivePath(name, 'points outside the archive');
    let current = wanted;
    for (let depth = 0; depth <= MAX_LINK_DEPTH; depth++) {
      const m = this.#resolveParents(current);
      if (m === undefined)
        throw new InvalidArgumentError('archive', `'${printable(wanted)}' is missing from the archive`);
      if (m.type === 'file') return { name: wanted, offset: m.offset, size: m.size };
      if (m.type !== 'symlink' && m.type !== 'link')
        throw new InvalidArgumentError('archive', `'${printable(wanted)}' is not a regular file in the archive`);
      current = m.target;
    }
    throw unsafe(wanted, 'is a link loop');
  }

  /** A member found after resolving symlinked parent directories. */
  #resolveParents(name: string): ArchiveMember | undefined {
    const direct = this.#members.get(name);
    if (direct !== undefined) return direct;
    const parts = name.split('/');
    for (let i = parts.length - 1; i > 0; i--) {
      const parent = this.#members.get(parts.slice(0, i).join('/'));
      if (parent?.type === 'symlink') return this.#members.get(posix.join(parent.target, ...parts.slice(i)));
    }
    return undefined;
  }

  /**
   * Reads the whole of a small file.
   *
   * @throws InvalidArgumentError (field `archive`) when it is larger than `limit` bytes.
   */
  async read(file: ArchiveFile, limit = 16 << 20): Promise<Buffer> {
    return readRange(file.path ?? this.path, file, limit);
  }

  /** Streams a file's content from the archive, starting `skip` bytes in. */
  stream(file: ArchiveFile, skip = 0): Readable {
    return streamRange(file.path ?? this.path, file, skip);
  }
}

/**
 * Reads a file's bytes from `path` (its byte range there).
 *
 * @throws InvalidArgumentError (field `archive`) when it is larger than `limit` or cut short.
 */
export async function readRange(path: string, file: ArchiveFile, limit = 16 << 20): Promise<Buffer> {
  if (file.size > limit)
    throw new InvalidArgumentError(
      'archive',
      `'${printable(file.name)}' has ${file.size} bytes, more than the ${limit} expected`,
    );
  const buf = Buffer.alloc(file.size);
  const fh = await fs.promises.open(path, 'r');
  try {
    let off = 0;
    while (off < file.size) {
      const { bytesRead } = await fh.read(buf, off, file.size - off, file.offset + off);
      if (bytesRead === 0) throw new InvalidArgumentError('archive', `'${printable(file.name)}' is truncated`);
      off += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Streams a file's byte range from `path`, starting `skip` bytes in. */
export function streamRange(path: string, file: ArchiveFile, skip = 0): Readable {
  if (file.size - skip <= 0) return Readable.from([]);
  return fs.createReadStream(path, {
    start: file.offset + skip,
    end: file.offset + file.size - 1,
    highWaterMark: 1 << 20,
  });
}

function add(members: Map<string, ArchiveMember>, e: TarEntry, offset: number, size: number): void {
  const name = cleanArchivePath(e.name);
  if (name === '') return; // the archive's own root directory
  let target = '';
  if (e.type === 'symlink') {
    if (e.linkname.startsWith('/')) throw unsafe(e.name, 'is a symlink to an absolute path');
    target = cleanArchivePath(
      posix.join(posix.dirname(name), e.linkname),
      'is a symlink that points outside the archive',
    );
  } else if (e.type === 'link') {
    target = cleanArchivePath(e.linkname, 'is a hardlink that points outside the archive');
  }
  const previous = members.get(name);
  if (previous !== undefined && !(previous.type === 'directory' && e.type === 'directory')) {
    throw unsafe(e.name, 'appears twice in the archive');
  }
  members.set(name, { name, type: e.type, offset, size, target });
}
