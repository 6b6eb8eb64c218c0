/**
 * Paths inside a root directory that earlier build steps (or a hostile context) made: every path
 * is resolved with openat2 `RESOLVE_IN_ROOT`, so symlinks are followed as if the root were `/`
 * (`/app -> /../../etc` stays inside), and a missing directory is made under the fd of its
 * already-resolved parent, never through a path string. What is written below the directory
 * found is then written by the one extractor (`image/layer-writer.ts`), which follows no symlink.
 *
 * @module
 */
import * as fs from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../../../errors.js';
import { O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH } from '../../../kernel/constants.js';
import { close } from '../../../kernel/fd.js';
import { RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2 } from '../../../kernel/openat2.js';
import { errnoOf, fdPath } from '../../extract-paths.js';
import { cleanPath } from './ignore.js';

/** Resolution inside a root: symlinks followed as if the root were `/`, no magic links. */
const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
/** Symlinks followed while making one path, as the kernel's limit. */
const MAX_LINKS = 40;

/** Owner of the directories a copy makes. */
export interface Owner {
  /** User id. */
  uid: number;
  /** Group id. */
  gid: number;
}

/** Opens the directory `dir` (a host path, or `/proc/self/fd/N` of a detached mount) as an `O_PATH` fd. */
export function openRootDir(dir: string, field: string): number {
  try {
    return fs.openSync(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT') throw new NotFoundError('path', dir, `${field} '${dir}' does not exist`, { cause: e });
    if (code === 'ENOTDIR') throw new InvalidArgumentError(field, `'${dir}' is not a directory`, { cause: e });
    throw e;
  }
}

/** Closes an fd this module opened. */
export function closeFd(fd: number): void {
  close(fd);
}

/** `path` (absolute or relative: both from the root) as openat2 wants it: `''` and `/` mean the root. */
function inRootName(path: string): string {
  const c = cleanPath(`/${path}`);
  return c === '/' ? '.' : c.slice(1);
}

/**
 * Opens `path` inside the root `rootFd` with `flags` (default `O_PATH`), following symlinks inside
 * the root only; undefined when it does not exist. Errors other than ENOENT are thrown.
 */
export function openInRoot(rootFd: number, path: string, flags = O_PATH): number | undefined {
  try {
    return openat2(rootFd, inRootName(path), flags | O_CLOEXEC, 0, IN_ROOT);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** The `stat` of `path` inside the root (symlinks followed inside it), or undefined when missing. */
export function statInRoot(rootFd: number, path: string): fs.Stats | undefined {
  let fd: number | undefined;
  try {
    fd = openInRoot(rootFd, path);
  } catch (e) {
    if (errnoOf(e) === 'ENOTDIR' || errnoOf(e) === 'ELOOP') return undefined;
    throw e;
  }
  if (fd === undefined) return undefined;
  try {
    return fs.fstatSync(fd);
  } finally {
    close(fd);
  }
}

/**
 * Opens the directory `path` inside the root `rootFd` (an `O_PATH` fd), making the missing ones
 * as `mkdir -p` does (0755, owned by `owner`, default 0:0). A dangling symlink on the way is
 * followed inside the root (its target is made), as BuildKit's `MkdirAll` over `RootPath` does.
 *
 * @throws InvalidArgumentError (field `field`) when a component is not a directory.
 */
export function ensureDirInRoot(rootFd: number, path: string, owner: Owner | undefined, field: string): number {
  let want = inRootName(path);
  for (let links = 0; ; links++) {
    if (links > MAX_LINKS) throw new InvalidArgumentError(field, `too many levels of symlinks in '${path}'`);
    try {
      return openat2(rootFd, want, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
    } catch (e) {
      const code = errnoOf(e);
      if (code === 'ENOTDIR' || code === 'ELOOP')
        throw new InvalidArgumentError(field, `'${path}' is not a directory (a component is a file)`, { cause: e });
      if (code !== 'ENOENT') throw e;
    }
    const parts = want.split('/');
    // The deepest directory that resolves; parts[k] is missing or a dangling symlink.
    let k = parts.length - 1;
    let fd: number | undefined;
    for (; k > 0; k--) {
      fd = openInRoot(rootFd, parts.slice(0, k).join('/'), O_PATH | O_DIRECTORY);
      if (fd !== undefined) break;
    }
    fd ??= openat2(rootFd, '.', O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
    try {
      const st = fs.lstatSync(fdPath(fd, parts[k] as string), { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) {
        const target = fs.readlinkSync(fdPath(fd, parts[k] as string), 'utf8');
        const base = target.startsWith('/') ? '' : parts.slice(0, k).join('/');
        want = inRootName([base, target, ...parts.slice(k + 1)].join('/'));
        continue;
      }
      if (st !== undefined) continue; // made meanwhile: resolve again
      return makeBelow(fd, parts.slice(k), owner);
    } finally {
      close(fd);
    }
  }
}

/** Makes the directories `parts` one below the other under the directory fd `fd`; returns an `O_PATH` fd on the last. */
function makeBelow(fd: number, parts: string[], owner: Owner | undefined): number {
  let cur = fd;
  try {
    for (const part of parts) {
      const p = fdPath(cur, part);
      try {
        fs.mkdirSync(p, 0o755);
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw e;
      }
      const next = fs.openSync(p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cur !== fd) close(cur);
      cur = next;
      fs.chmodSync(fdPath(cur, ''), 0o755); // through its fd: no umask
      if (owner !== undefined && (owner.uid !== 0 || owner.gid !== 0))
        fs.chownSync(fdPath(cur, ''), owner.uid, owner.gid);
    }
  } catch (e) {
    if (cur !== fd) close(cur);
    throw e;
  }
  return cur === fd ? fs.openSync(fdPath(fd, ''), O_PATH | O_DIRECTORY | O_CLOEXEC) : cur;
}
