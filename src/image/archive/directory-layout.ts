/**
 * An image layout as a directory on disk (what `skopeo copy … oci:<dir>` writes, or a
 * docker-archive extracted by hand), read with the same rules as a tar: every lookup walks the
 * path one component at a time with `lstat`, follows a symlink only when its target stays inside
 * the directory (re-walking from the root), and refuses anything else with an
 * {@link UnsafeLayerError}. Only regular files are read. The directory is the caller's own: it is
 * not guarded against being changed while it is read (a tar is; prefer one for untrusted input).
 *
 * @module
 */
import * as fs from 'node:fs';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidArgumentError } from '../../errors.js';
import { printable } from '../extract-paths.js';
import {
  MAX_LINK_DEPTH,
  cleanArchivePath,
  readRange,
  streamRange,
  unsafe,
  type ArchiveFile,
  type ArchiveReader,
} from './archive-index.js';

/** A directory holding an image layout. */
export class DirectoryLayout implements ArchiveReader {
  /** The directory. */
  readonly root: string;

  /** A reader of the layout in `root`; touches nothing until used. */
  constructor(root: string) {
    this.root = root;
  }

  /** Whether `name` exists (a link counts, whatever it points at). */
  has(name: string): boolean {
    try {
      return this.#walk(cleanArchivePath(name), false) !== undefined;
    } catch {
      // A name that is not clean, or that leaves the layout, is not in it.
      return false;
    }
  }

  /**
   * Finds the regular file `name` names.
   *
   * @throws UnsafeLayerError when `name` or a symlink on the way leaves the directory or loops;
   *   InvalidArgumentError (field `archive`) when it is missing or not a regular file.
   */
  resolve(name: string): ArchiveFile {
    const wanted = cleanArchivePath(name, 'points outside the image layout');
    const found = this.#walk(wanted, true);
    if (found === undefined)
      throw new InvalidArgumentError('archive', `'${printable(wanted)}' is missing from the image layout`);
    if (!found.st.isFile())
      throw new InvalidArgumentError('archive', `'${printable(wanted)}' is not a regular file in the image layout`);
    return { name: wanted, offset: 0, size: found.st.size, path: join(this.root, found.rel) };
  }

  /** Reads the whole of a small file. */
  read(file: ArchiveFile, limit?: number): Promise<Buffer> {
    return readRange(file.path ?? join(this.root, file.name), file, limit);
  }

  /** Streams a file's content, starting `skip` bytes in. */
  stream(file: ArchiveFile, skip = 0): Readable {
    return streamRange(file.path ?? join(this.root, file.name), file, skip);
  }

  /** Walks `rel` from the root, following symlinks that stay inside (also the last one when `follow`). */
  #walk(rel: string, follow: boolean): { rel: string; st: fs.Stats } | undefined {
    let parts = rel === '' ? [] : rel.split('/');
    let done: string[] = [];
    let links = 0;
    let st = fs.lstatSync(this.root);
    while (parts.length > 0) {
      const [part, ...rest] = parts as [string, ...string[]];
      const here = [...done, part].join('/');
      const next = fs.lstatSync(join(this.root, here), { throwIfNoEntry: false });
      if (next === undefined) return undefined;
      if (next.isSymbolicLink() && (rest.length > 0 || follow)) {
        if (++links > MAX_LINK_DEPTH) throw unsafe(rel, 'is a link loop');
        const target = fs.readlinkSync(join(this.root, here));
        if (target.startsWith('/')) throw unsafe(here, 'is a symlink to an absolute path');
        const joined = cleanArchivePath(
          posix.join(done.join('/'), target, ...rest),
          'is a symlink that points outside the image layout',
        );
        parts = joined === '' ? [] : joined.split('/');
        done = [];
        st = fs.lstatSync(this.root);
        continue;
      }
      if (rest.length > 0 && !next.isDirectory()) return undefined;
      st = next;
      done.push(part);
      parts = rest;
    }
    return { rel: done.join('/'), st };
  }
}
