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

/** Flags and resolution of an in-root directory lookup: symlinks followed, but inside the root. */
const DIR_IN_ROOT = [O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS] as const;
/** Most symlinks (and lost races) {@link makeDirInRoot} goes through, as the kernel's 40 for a path. */
const MAX_HOPS = 40;

/**
 * Opens the directory `path` inside the root `rootFd` (an `O_PATH` fd; symlinks followed inside
 * the root only, as in a chroot), making the components that are missing as `mkdir -p` in a
 * chroot does (BuildKit's `MkdirAll` of COPY and ADD destinations, after `RootPath`): each is made
 * under its parent's fd with mode 0755, owned by `owner` (default: the caller), and a symlink that
 * names nothing yet is followed (inside the root) to make its target.
 *
 * @throws InvalidArgumentError (field `field`) when a component is not a directory, or more than
 *   40 symlinks are followed.
 */
export function makeDirInRoot(
  rootFd: number,
  path: string,
  owner?: { uid: number; gid: number },
  field = 'path',
): number {
  let parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let hops = 0;
  for (let i = 0; i <= parts.length;) {
    const prefix = `/${parts.slice(0, i).join('/')}`;
    let fd: number;
    try {
      fd = openat2(rootFd, prefix, ...DIR_IN_ROOT);
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') return openDirInRoot(rootFd, prefix, field); // names the failure
      // The parent is a directory (it was opened at i - 1); the component is missing or a dangling link.
      if (++hops > MAX_HOPS) throw new InvalidArgumentError(field, `too many symlinks in '${path}'`, { cause: e });
      const name = parts[i - 1] as string;
      const parent = openat2(rootFd, `/${parts.slice(0, i - 1).join('/')}`, ...DIR_IN_ROOT);
      try {
        const link = makeDirAt(parent, name, owner);
        if (link !== undefined) {
          const rest = parts.slice(i);
          parts = [...(link.startsWith('/') ? [] : parts.slice(0, i - 1)), ...link.split('/'), ...rest];
          parts = parts.filter((p) => p !== '' && p !== '.');
          i = 0;
        }
      } finally {
        close(parent);
      }
      continue;
    }
    if (i === parts.length) return fd;
    close(fd);
    i++;
  }
  throw new InvalidArgumentError(field, `cannot make '${path}'`); // not reached: the loop returns
}

/**
 * Makes the directory `name` under the directory fd `parentFd` (mode 0755, owned by `owner`), or
 * returns the target of the symlink in its place. Something made meanwhile is left as it is.
 */
function makeDirAt(
  parentFd: number,
  name: string,
  owner: { uid: number; gid: number } | undefined,
): string | undefined {
  const path = at(parentFd, Buffer.from(name, 'utf8'));
  try {
    fs.mkdirSync(path, 0o755); // mkdir never follows a symlink in its place
  } catch (e) {
    if (errnoOf(e) !== 'EEXIST') throw e;
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    return st?.isSymbolicLink() ? fs.readlinkSync(path) : undefined;
  }
  const fd = fs.openSync(path, fs.constants.O_RDONLY | O_DIRECTORY | fs.constants.O_NOFOLLOW | O_CLOEXEC);
  try {
    fs.fchmodSync(fd, 0o755); // no umask
    if (owner !== undefined) fs.fchownSync(fd, owner.uid, owner.gid);
  } finally {
    fs.closeSync(fd);
  }
  return undefined;
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
