/**
 * The build context: a directory read in place, a tar stream (plain, gzip or zstd) unpacked into
 * a temp directory by the one extractor of hostile archives (`image/layer-unpack.ts`), or a map
 * of in-memory files written into a temp directory through the same extractor. With it, the
 * Dockerfile's text and the `.dockerignore` matcher (`<Dockerfile>.dockerignore` next to the
 * Dockerfile wins over the context's `.dockerignore`). Both files are read inside the context
 * (symlinks cannot lead out of it), bounded in size, and even when the ignore file leaves them out.
 *
 * @module
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Readable } from 'node:stream';
import { BerthError, InvalidArgumentError, NotFoundError } from '../../../errors.js';
import { removeTree } from '../../../state/remove-tree.js';
import { errnoOf } from '../../extract-paths.js';
import { unpackLayer } from '../../layer-unpack.js';
import { TarExtractor } from '../../layer-writer.js';
import { cleanPath, createIgnoreMatcher, readIgnorePatterns, type IgnoreMatcher } from './ignore.js';
import { closeFd, openInRoot, openRootDir } from './root.js';

/** A build context ready to read. */
export interface BuildContext {
  /** The directory the context is read from, in place. */
  root: string;
  /** The Dockerfile: where it was read from, and its text. */
  dockerfile: { path: string; text: string };
  /** What `.dockerignore` (or `<Dockerfile>.dockerignore`) leaves out. */
  ignore: IgnoreMatcher;
  /** Removes what opening the context made (a temp directory); a directory context is left alone. */
  close(): Promise<void>;
}

/** Options of {@link openBuildContext}. */
export interface OpenContextOptions {
  /** The Dockerfile: a path relative to the context (default `Dockerfile`), or an absolute host path. */
  dockerfile?: string;
  /** Stops unpacking a tar context. */
  signal?: AbortSignal;
  /** Where a tar or in-memory context is unpacked (default: the system's temp directory). */
  tempDir?: string;
}

/** What a build context may be: a directory, a tar stream, or in-memory files (relative path → content). */
export type ContextSource = string | NodeJS.ReadableStream | Record<string, string | Buffer>;

/** Largest Dockerfile or ignore file read. */
const MAX_TEXT = 16 << 20;

/** The text of the regular file `path` inside the root `rootFd` (or a host path when `rootFd` is undefined); undefined when missing. */
function readBounded(rootFd: number | undefined, path: string, field: string): string | undefined {
  let fd: number | undefined;
  try {
    const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;
    fd = rootFd === undefined ? fs.openSync(path, flags) : openInRoot(rootFd, path, flags);
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EISDIR') throw new InvalidArgumentError(field, `'${path}' is a directory`, { cause: e });
    throw e;
  }
  if (fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new InvalidArgumentError(field, `'${path}' is not a regular file`);
    if (st.size > MAX_TEXT) throw new InvalidArgumentError(field, `'${path}' is larger than ${MAX_TEXT} bytes`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the Dockerfile and the ignore file of the context at `root`. */
function readContext(root: string, options: OpenContextOptions): Omit<BuildContext, 'close' | 'root'> {
  const name = options.dockerfile ?? 'Dockerfile';
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('dockerfile', 'must be a path');
  const rootFd = openRootDir(root, 'context');
  try {
    const host = isAbsolute(name) && !cleanPath(name).startsWith(`${cleanPath(root)}/`);
    const rel = host ? name : isAbsolute(name) ? cleanPath(name).slice(cleanPath(root).length + 1) : name;
    const text = readBounded(host ? undefined : rootFd, rel, 'dockerfile');
    if (text === undefined)
      throw new NotFoundError('path', name, `invalid dockerfile: '${name}' not found in the build context`);
    const path = host ? name : join(root, cleanPath(`/${rel}`));
    const specific = readBounded(host ? undefined : rootFd, `${rel}.dockerignore`, 'dockerignore');
    const ignoreText = specific ?? readBounded(rootFd, '.dockerignore', 'dockerignore') ?? '';
    return { dockerfile: { path, text }, ignore: createIgnoreMatcher(readIgnorePatterns(ignoreText)) };
  } finally {
    closeFd(rootFd);
  }
}

/** A new private temp directory for a context. */
function makeTemp(options: OpenContextOptions): string {
  const parent = options.tempDir ?? tmpdir();
  fs.mkdirSync(parent, { recursive: true });
  return fs.mkdtempSync(join(parent, 'berth-context-'));
}

/** Writes in-memory files into the empty directory `dir` through the extractor (names cleaned, none may climb out). */
function writeFiles(dir: string, files: Record<string, string | Buffer>): void {
  const fd = openRootDir(dir, 'context');
  const ex = new TarExtractor(fd, 'copy');
  try {
    const now = Date.now() / 1000;
    for (const [name, value] of Object.entries(files)) {
      const rel = cleanPath(name);
      if (name === '' || isAbsolute(name) || rel === '.' || rel.startsWith('../') || rel === '..')
        throw new InvalidArgumentError(
          'context',
          `in-memory file name '${name}' must be a relative path inside the context`,
        );
      if (typeof value !== 'string' && !Buffer.isBuffer(value))
        throw new InvalidArgumentError('context', `in-memory file '${name}' must be a string or a Buffer`);
      const data = typeof value === 'string' ? Buffer.from(value) : value;
      const bin = Buffer.from(rel).toString('latin1');
      ex.entry({
        name: bin,
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: now,
        atime: now,
        linkname: '',
        devmajor: 0,
        devminor: 0,
        xattrs: new Map(),
      });
      ex.data(data);
      ex.entryEnd();
    }
    ex.finish();
  } catch (e) {
    ex.abort();
    throw e;
  } finally {
    closeFd(fd);
  }
}

/** Removes `dir`, attaching a failure to `cause` when there is one. */
async function removeTemp(dir: string, cause?: unknown): Promise<void> {
  if (await removeTree(dir)) return;
  const err = new BerthError('INTERNAL', `cannot remove the build context's temp directory ${dir}`);
  throw cause === undefined ? err : new AggregateError([cause, err], err.message);
}

/**
 * Opens a build context (see the module notes).
 *
 * @throws NotFoundError when the context directory or the Dockerfile does not exist;
 *   InvalidArgumentError (field `context` or `dockerfile`) for a source of the wrong kind, an
 *   in-memory name outside the context, or a malformed archive; UnsafeLayerError for a tar
 *   entry that would escape.
 */
export async function openBuildContext(source: ContextSource, options: OpenContextOptions = {}): Promise<BuildContext> {
  options.signal?.throwIfAborted();
  if (typeof source === 'string') {
    if (source === '') throw new InvalidArgumentError('context', 'must be a directory, a tar stream or a map of files');
    const root = cleanPath(isAbsolute(source) ? source : join(process.cwd(), source));
    return { root, ...readContext(root, options), close: async () => undefined };
  }
  const stream = source instanceof Readable || typeof (source as NodeJS.ReadableStream).pipe === 'function';
  if (!stream && (typeof source !== 'object' || source === null || Array.isArray(source)))
    throw new InvalidArgumentError('context', 'must be a directory, a tar stream or a map of files');
  const parent = makeTemp(options);
  const root = join(parent, 'context');
  try {
    if (stream) {
      try {
        await unpackLayer(source as Readable, root, { signal: options.signal });
      } catch (e) {
        if (e instanceof InvalidArgumentError && e.field === 'layer')
          throw new InvalidArgumentError('context', e.message.replace(/^invalid layer: /, ''), { cause: e });
        throw e;
      }
    } else {
      fs.mkdirSync(root, 0o755);
      writeFiles(root, source as Record<string, string | Buffer>);
    }
    return { root, ...readContext(root, options), close: () => removeTemp(parent) };
  } catch (e) {
    await removeTemp(parent, e);
    throw e;
  }
}
