/**
 * The cache key of a COPY step's sources: a sha256 over what the copy would write, read from the
 * same selection `copyInto` uses (`select.ts`): each entry's relative name, type, permission bits,
 * symlink target and content hash. Not mtimes and not owners (unless `keepOwners`, where the
 * source's owners are copied): equal content gives an equal key. Content hashes come from a
 * {@link HashCache} when the file is unchanged since it was last hashed.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { O_NOFOLLOW } from '../../../kernel/constants.js';
import { ConflictError } from '../../../errors.js';
import { printable } from '../../extract-paths.js';
import { HashCache } from './hash-cache.js';
import { closeFd, openRootDir } from './root.js';
import { READ_FLAGS, checkSelection, closeSelection, openSelection, walkTree, type SourceSelection } from './select.js';

/** The options of {@link digestSources}: the selection of `copyInto`, and where to keep content hashes. */
export interface DigestOptions extends SourceSelection {
  /** A directory for the persistent hash cache (e.g. `<engine root>/build/hashes/`); none when absent. */
  cacheDir?: string;
  /** `--chmod` (part of what is written). */
  chmod?: number;
}

const CHUNK = 1 << 20;

/** The sha256 (hex) of the regular file at `path`, opened without following it (except a top-level source's fd link). */
function hashFile(path: Buffer, st: fs.Stats, top: boolean, buf: Buffer): string {
  const fd = fs.openSync(path, top ? READ_FLAGS & ~O_NOFOLLOW : READ_FLAGS);
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile() || now.ino !== st.ino)
      throw new ConflictError('CONFLICT', `'${printable(path.toString('latin1'))}' changed while it was hashed; retry`);
    const h = createHash('sha256');
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, CHUNK, null)) > 0) h.update(buf.subarray(0, n));
    return h.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A `sha256:<hex>` digest of the sources `options` selects, equal for equal content (see the
 * module notes). Throws as `copyInto` does for a missing source or a glob that matches nothing.
 */
export async function digestSources(options: DigestOptions): Promise<string> {
  const exclude = checkSelection(options);
  const cache = HashCache.open(options.cacheDir);
  const rootFd = openRootDir(options.sourceRoot, 'sourceRoot');
  const sel = (() => {
    try {
      return openSelection(rootFd, options, exclude);
    } catch (e) {
      closeFd(rootFd);
      throw e;
    }
  })();
  const out = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  const record = (name: string, path: Buffer, st: fs.Stats, top: boolean): void => {
    let what: string;
    if (st.isFile()) {
      let sha = cache.get(st);
      if (sha === undefined) {
        sha = hashFile(path, st, top, buf);
        cache.set(st, sha);
      }
      what = `f ${sha}`;
    } else if (st.isDirectory()) what = 'd';
    else if (st.isSymbolicLink()) what = `l ${fs.readlinkSync(path, { encoding: 'buffer' }).toString('hex')}`;
    else what = `n ${st.mode & 0o170000} ${st.rdev}`;
    const mode = options.chmod !== undefined && !st.isSymbolicLink() ? options.chmod : st.mode & 0o7777;
    const owner = options.keepOwners ? ` ${st.uid}:${st.gid}` : '';
    out.update(`${Buffer.from(name, 'latin1').toString('hex')} ${mode.toString(8)}${owner} ${what}\n`);
  };
  try {
    for (const top of sel.tops) {
      options.signal?.throwIfAborted();
      out.update(`source ${Buffer.from(top.keep).toString('hex')}\n`);
      record('', Buffer.from(`/proc/self/fd/${top.fd}`), top.st, true);
      if (top.st.isDirectory())
        for (const it of walkTree(top, sel, options.signal)) record(it.name, it.path, it.st, false);
    }
  } finally {
    closeSelection(sel);
    closeFd(rootFd);
  }
  cache.save();
  return `sha256:${out.digest('hex')}`;
}
