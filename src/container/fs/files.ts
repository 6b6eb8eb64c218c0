/**
 * `copyTo` of plain files: `{ '/app/config.json': '{}', '/app/static': { source: './static' } }`.
 * Each file becomes a small tar archive that the one extractor for hostile archives writes,
 * through `copy.ts`'s `extractPath`, into the deepest directory above it that exists: that
 * directory is resolved inside the container's root (a symlink on the way is followed inside the
 * root, as `docker cp` resolves its destination), and the parents still missing below it are made
 * by the extractor (0755) without following any symlink (one in their place is refused with
 * `UNSAFE_LAYER`). Existing directories keep their owner and mode. Contents are files of mode
 * 0644; a host file or directory keeps its modes, is owned by root (`docker cp`'s default) and its
 * symlinks are copied as symlinks.
 *
 * @module
 */
import * as fs from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { parseOptions } from '../options.js';
import { END_OF_ARCHIVE, encodeHeader, packItems, walkAt, type WalkItem } from '../../image/tar-writer.js';

/** What a file of {@link ContainerFiles} holds: its contents, or a host file or directory to copy. */
export type ContainerFileSource = Buffer | Uint8Array | string | { /** A host file or directory. */ source: string };

/** Files to copy into a container: absolute container paths to contents or host sources. */
export type ContainerFiles = Record<string, ContainerFileSource>;

/** A container path a file may be written at: absolute, neither the root nor through `..`. */
const containerPath = z
  .string()
  .startsWith('/', 'must be an absolute path')
  .refine((p) => !p.includes('\0'), 'must not contain a NUL byte')
  .refine((p) => !p.split('/').includes('..'), "must not contain '..'")
  .refine((p) => p.split('/').some((s) => s !== '' && s !== '.'), 'must name a file, not the root');

/** Schema of {@link ContainerFiles}. */
export const containerFilesSchema = z
  .record(
    containerPath,
    z.union([
      z.string(),
      z.instanceof(Uint8Array),
      z.strictObject({
        source: z
          .string()
          .min(1)
          .refine((p) => !p.includes('\0'), 'must not contain a NUL byte'),
      }),
    ]),
  )
  .refine((r) => Object.keys(r).length > 0, 'expected at least one file');

/** One file of a checked {@link ContainerFiles}: its path's components and what it holds. */
export type PlannedFile = { parts: string[]; contents: Buffer } | { parts: string[]; host: string };

/**
 * Checks the host sources of `files` (each must exist; a symlink given as a source is followed)
 * and names each file from the container's root. Nothing is read yet.
 *
 * @throws NotFoundError (`NOT_FOUND`) for a missing host source.
 */
export function planFiles(files: ContainerFiles): PlannedFile[] {
  return Object.entries(files).map(([path, value]) => {
    const parts = path.split('/').filter((s) => s !== '' && s !== '.');
    if (typeof value === 'string' || value instanceof Uint8Array) return { parts, contents: Buffer.from(value) };
    let host: string;
    try {
      host = fs.realpathSync(resolve(value.source));
    } catch (e) {
      throw new NotFoundError('path', value.source, `host source '${value.source}' for '${path}' does not exist`, {
        cause: e,
      });
    }
    return { parts, host };
  });
}

/** A walk item owned by root, as `docker cp` writes a host file without `--archive`. */
function ownedByRoot(item: WalkItem): WalkItem {
  const st = Object.assign(Object.create(Object.getPrototypeOf(item.st) as object) as fs.Stats, item.st, {
    uid: 0,
    gid: 0,
  });
  return { ...item, st };
}

/** The host tree at `host`, named `name` in the archive, every entry owned by root. */
function* walkHost(host: string, name: string): Generator<WalkItem> {
  const parent = fs.openSync(dirname(host), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    for (const item of walkAt(parent, Buffer.from(basename(host)), name)) yield ownedByRoot(item);
  } finally {
    fs.closeSync(parent);
  }
}

/**
 * The archive of `file` named `name` (relative to where it is extracted): contents as a root-owned
 * 0644 file, a host source as {@link packItems} packs it.
 */
async function* packFile(file: PlannedFile, name: string, mtime: number): AsyncGenerator<Buffer> {
  // Archive names are binary strings (one char per byte), as `image/tar-writer.ts` has them.
  const binary = Buffer.from(name, 'utf8').toString('latin1');
  if ('host' in file) return yield* packItems(walkHost(file.host, binary));
  const size = file.contents.length;
  yield encodeHeader({ name: binary, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime });
  yield file.contents;
  yield Buffer.alloc((512 - (size % 512)) % 512);
  yield END_OF_ARCHIVE;
}

/**
 * Writes `files` (from {@link planFiles}) with `copyTo` (`docker cp - CONTAINER:dir`, which
 * resolves `dir` inside the root and throws `NOT_FOUND` for a missing one): each into the deepest
 * existing directory above it, the missing ones made by the extractor.
 */
export async function writeFiles(
  files: readonly PlannedFile[],
  copyTo: (dir: string, tar: AsyncIterable<Buffer>) => Promise<void>,
  mtime = Math.floor(Date.now() / 1000),
): Promise<void> {
  for (const file of files) {
    for (let depth = file.parts.length - 1; ; depth--) {
      const dir = `/${file.parts.slice(0, depth).join('/')}`;
      try {
        await copyTo(dir, packFile(file, file.parts.slice(depth).join('/'), mtime));
        break;
      } catch (e) {
        if (!(depth > 0 && e instanceof NotFoundError && e.kind === 'path' && e.ref === dir)) throw e;
      }
    }
  }
}

/**
 * `container.copyTo()`: a map of files (see {@link ContainerFiles}), or a tar extracted into the
 * directory `path`, through the container service's hostile-safe copy.
 *
 * @throws InvalidArgumentError naming `files`, `path` or `tar` before anything is written.
 */
export async function copyIntoContainer(
  svc: { copyTo(ref: string, path: string, source: AsyncIterable<Uint8Array> | Uint8Array): Promise<void> },
  ref: string,
  pathOrFiles: string | ContainerFiles,
  tar?: AsyncIterable<Uint8Array> | Uint8Array,
): Promise<void> {
  if (typeof pathOrFiles === 'object' && pathOrFiles !== null && tar === undefined) {
    const files = parseOptions(containerFilesSchema, pathOrFiles, 'files') as ContainerFiles;
    return writeFiles(planFiles(files), (dir, t) => svc.copyTo(ref, dir, t));
  }
  const p = parseOptions(z.string().startsWith('/', 'must be an absolute path'), pathOrFiles, 'path');
  if (
    !(tar instanceof Uint8Array) &&
    typeof (tar as AsyncIterable<Uint8Array>)?.[Symbol.asyncIterator] !== 'function'
  ) {
    throw new InvalidArgumentError('tar', 'expected a tar stream or the bytes of a tar');
  }
  await svc.copyTo(ref, p, tar as AsyncIterable<Uint8Array> | Uint8Array);
}
