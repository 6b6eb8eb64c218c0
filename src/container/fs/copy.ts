/**
 * Copies in and out of a container's root: `docker cp` in both directions.
 *
 * Copies resolve paths inside the container's root through a directory fd, never by joining
 * strings: the root is `/proc/<pid>/root` of a running container, or, for a stopped one, a
 * detached overlay mount of its upper dir over its image layers (made with fsopen/fsmount, reached
 * only through its fd, gone when the fd is closed), so writes land in the upper dir with
 * overlayfs's own copy-up. The destination or source path is opened with openat2
 * `RESOLVE_IN_ROOT` (symlinks followed, but inside the root); every later operation works on a
 * final component under a directory fd (`/proc/self/fd/<fd>/<name>`), with calls that do not
 * follow a trailing symlink, and an archive is extracted by the one extractor for hostile tars
 * (`image/layer-writer.ts`), which resolves entries with `RESOLVE_NO_SYMLINKS` under the
 * destination: nothing is read or written through a symlink the container controls.
 *
 * @module
 */
import * as fs from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { close } from '../../kernel/fd.js';
import { O_CLOEXEC, O_DIRECTORY, O_PATH } from '../../kernel/constants.js';
import {
  FSCONFIG_CMD_CREATE,
  FSCONFIG_SET_STRING,
  FSMOUNT_CLOEXEC,
  FSOPEN_CLOEXEC,
  fsconfig,
  fsmount,
  fsopen,
} from '../../kernel/fsmount.js';
import { RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2 } from '../../kernel/openat2.js';
import { errnoOf, fdPath as at } from '../../image/extract-paths.js';
import { TarExtractor } from '../../image/layer-writer.js';
import { TarReader } from '../../image/tar-reader.js';
import { packItems, walkAt, walkBelow } from '../../image/tar-writer.js';

/**
 * Mounts, detached, the overlay of `upper` (with `work`) over `lowers` (topmost first); returns
 * the fd of its root. Nothing appears in any mount table; closing the fd unmounts it.
 */
export function mountDetachedOverlay(upper: string, work: string, lowers: readonly string[]): number {
  const fsfd = fsopen('overlay', FSOPEN_CLOEXEC);
  try {
    for (const l of lowers) fsconfig(fsfd, FSCONFIG_SET_STRING, 'lowerdir+', l);
    fsconfig(fsfd, FSCONFIG_SET_STRING, 'upperdir', upper);
    fsconfig(fsfd, FSCONFIG_SET_STRING, 'workdir', work);
    fsconfig(fsfd, FSCONFIG_CMD_CREATE, null, null);
    return fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
  } finally {
    close(fsfd);
  }
}

/** Splits a container path into its directory and final component (`''` for the root). */
function splitPath(path: string): [dir: string, base: string] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) return ['/', ''];
  const base = parts.pop() as string;
  if (base === '..') return [`/${[...parts, '..'].join('/')}`, ''];
  return [`/${parts.join('/')}`, base];
}

/** Opens `path` (a directory) inside the root `rootFd`, following symlinks inside the root only. */
function openDirInRoot(rootFd: number, path: string, field: string): number {
  try {
    return openat2(
      rootFd,
      path === '' ? '/' : path,
      O_PATH | O_DIRECTORY | O_CLOEXEC,
      0,
      RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    );
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT')
      throw new NotFoundError('path', path, `'${path}' does not exist in the container`, { cause: e });
    if (code === 'ENOTDIR')
      throw new InvalidArgumentError(field, `'${path}' is not a directory in the container`, { cause: e });
    throw e;
  }
}

/**
 * The tar of `path` inside the root `rootFd`, as `docker cp CONTAINER:path -`: a file as its base
 * name, a directory as its base name and everything below; a final symlink is copied as a symlink.
 * The root itself gives its content.
 */
export async function* packPath(rootFd: number, path: string): AsyncGenerator<Buffer> {
  const [dir, base] = splitPath(path);
  const dfd = openDirInRoot(rootFd, dir, 'path');
  try {
    if (base === '') {
      // The directory itself (`/` or a path ending in `..`): its entries, without a top entry.
      const rfd = fs.openSync(at(dfd, ''), fs.constants.O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      try {
        yield* packItems(walkBelow(rfd));
      } finally {
        fs.closeSync(rfd);
      }
      return;
    }
    const baseBytes = Buffer.from(base, 'utf8');
    if (fs.lstatSync(at(dfd, baseBytes), { throwIfNoEntry: false }) === undefined) {
      throw new NotFoundError('path', path, `'${path}' does not exist in the container`);
    }
    yield* packItems(walkAt(dfd, baseBytes, baseBytes.toString('latin1')));
  } finally {
    close(dfd);
  }
}

// ───────────────────────────── extracting ─────────────────────────────

/** What {@link extractPath} reads: a stream, or the whole archive. */
export type TarSource = AsyncIterable<Uint8Array> | Uint8Array;

/**
 * Extracts the archive `source` into the directory `path` inside the root `rootFd`, as
 * `docker cp - CONTAINER:path`. `path` must be a directory (a symlink to one inside the root is
 * followed inside the root).
 */
export async function extractPath(rootFd: number, path: string, source: TarSource): Promise<void> {
  const dest = openDirInRoot(rootFd, path, 'path');
  const sink = new TarExtractor(dest, 'copy');
  const reader = new TarReader(sink);
  try {
    if (source instanceof Uint8Array) reader.write(source);
    else for await (const chunk of source) reader.write(chunk);
    reader.end();
    sink.finish();
  } catch (e) {
    sink.abort();
    if (e instanceof InvalidArgumentError && e.field === 'layer')
      throw new InvalidArgumentError('tar', e.message, { cause: e });
    throw e;
  } finally {
    close(dest);
  }
}
