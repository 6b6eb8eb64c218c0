/**
 * What a COPY step reads: its sources expanded (globs as Go's `filepath.Match`, per path
 * segment), each resolved inside the source root (a symlink named as a source is followed, inside
 * the root only), and the trees below directory sources walked through directory fds with
 * `O_NOFOLLOW` (symlinks inside stay symlinks), with `.dockerignore` and `--exclude` applied.
 * `copy.ts` writes the selection; `digest.ts` hashes the very same selection.
 *
 * @module
 */
import * as fs from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../../../errors.js';
import { O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW } from '../../../kernel/constants.js';
import { lgetxattr } from '../../../kernel/xattr.js';
import { errnoOf, fdPath, printable } from '../../extract-paths.js';
import { cleanPath, createIgnoreMatcher, NO_IGNORE, type IgnoreMatcher } from './ignore.js';
import { globMatch, hasGlobMeta } from './match.js';
import { closeFd, openInRoot } from './root.js';

/** What selects a COPY step's files (the options of `copyInto` and `digestSources` that name sources). */
export interface SourceSelection {
  /** The directory the sources are read from: the context directory, or a mounted rootfs (`/proc/self/fd/N`). */
  sourceRoot: string;
  /** What `.dockerignore` leaves out of the context (paths relative to `sourceRoot`). */
  ignore?: IgnoreMatcher;
  /** The sources as written (variables already expanded), relative to `sourceRoot`; may be globs. */
  sources: string[];
  /** `--exclude` patterns (`.dockerignore` syntax), matched below each source. */
  exclude?: string[];
  /** `--parents`: keep each source's path (after a `/./` pivot when there is one) under the destination. */
  parents?: boolean;
  /** Keep the source files' owners (COPY `--from` a stage or image) instead of 0:0 when no chown is given. */
  keepOwners?: boolean;
  /** Stops the work between entries. */
  signal?: AbortSignal;
}

/** One source after expansion, resolved inside the source root. */
export interface TopSource {
  /** The source as written. */
  given: string;
  /** Its path relative to the source root (`''` for the root). */
  rel: string;
  /** With `--parents`: the path kept under the destination; otherwise its base name. */
  keep: string;
  /** An `O_PATH` fd on it (symlinks followed inside the root). */
  fd: number;
  /** Its `stat`. */
  st: fs.Stats;
  /** A regular file's `security.capability` attribute, when set (read under its parent: not through the fd's link). */
  capability?: Buffer;
}

/** One entry below a directory source. */
export interface TreeItem {
  /** Its name relative to the directory source (binary string). */
  name: string;
  /** Where to read it (under its parent's fd; never followed). */
  path: Buffer;
  /** Its `lstat`. */
  st: fs.Stats;
}

/** The validated selection: matchers built once. */
export interface Selection {
  /** The sources, expanded and opened. */
  tops: TopSource[];
  /** The `.dockerignore` matcher. */
  ignore: IgnoreMatcher;
  /** The `--exclude` matcher. */
  exclude: IgnoreMatcher;
}

/** Checks the selection's options (before any side effect); returns the exclude matcher. */
export function checkSelection(o: SourceSelection): IgnoreMatcher {
  if (typeof o.sourceRoot !== 'string' || o.sourceRoot === '')
    throw new InvalidArgumentError('sourceRoot', 'must be a directory path');
  if (!Array.isArray(o.sources) || o.sources.length === 0)
    throw new InvalidArgumentError('sources', 'at least one source is needed');
  for (const s of o.sources)
    if (typeof s !== 'string' || s === '') throw new InvalidArgumentError('sources', 'a source is an empty string');
  return createIgnoreMatcher(o.exclude ?? [], 'exclude');
}

/** A source's path relative to the root, and what `--parents` keeps of it (after a `/./` pivot). */
function splitSource(given: string): { rel: string; pivot: number } {
  const pivotAt = given.indexOf('/./');
  const rel = cleanPath(`/${given}`).slice(1);
  if (pivotAt <= 0) return { rel, pivot: 0 };
  const before = cleanPath(`/${given.slice(0, pivotAt)}`).slice(1);
  return { rel, pivot: before === '' ? 0 : before.split('/').length };
}

/** Whether `rel` is left out by the ignore file (a directory with exceptions below it is not). */
function ignored(ignore: IgnoreMatcher, rel: string, isDir: boolean): boolean {
  return ignore.matches(rel, isDir) && !(isDir && ignore.hasExceptions);
}

/** The paths a glob source matches inside the root, sorted (Go's `filepath.Glob` order). */
function expandGlob(rootFd: number, rel: string, given: string): string[] {
  let found = [''];
  for (const part of rel.split('/')) {
    if (!hasGlobMeta(part)) {
      found = found.map((f) => (f === '' ? part : `${f}/${part}`));
      continue;
    }
    const next: string[] = [];
    for (const dir of found) {
      let fd: number | undefined;
      try {
        fd = openInRoot(rootFd, dir, fs.constants.O_RDONLY | O_DIRECTORY);
      } catch (e) {
        if (errnoOf(e) === 'ENOTDIR') continue;
        throw e;
      }
      if (fd === undefined) continue;
      try {
        const names = fs.readdirSync(fdPath(fd, ''), 'utf8').sort();
        for (const n of names) if (globMatch(part, n, 'sources')) next.push(dir === '' ? n : `${dir}/${n}`);
      } finally {
        closeFd(fd);
      }
    }
    found = next;
    if (found.length === 0) break;
  }
  if (found.length === 0)
    throw new NotFoundError('path', given, `no source files were specified: '${given}' matches no file`);
  return found;
}

/**
 * Expands and opens the sources inside the root `rootFd`. The caller closes the returned fds
 * ({@link closeSelection}).
 *
 * @throws NotFoundError for a source that does not exist (or is left out by `.dockerignore`), or a
 *   glob that matches nothing.
 */
export function openSelection(rootFd: number, o: SourceSelection, exclude: IgnoreMatcher): Selection {
  const ignore = o.ignore ?? NO_IGNORE;
  const tops: TopSource[] = [];
  try {
    for (const given of o.sources) {
      const { rel, pivot } = splitSource(given);
      const glob = hasGlobMeta(rel);
      const paths = glob ? expandGlob(rootFd, rel, given) : [rel];
      let opened = 0;
      for (const p of paths) {
        const fd = openInRoot(rootFd, p);
        if (fd === undefined) {
          if (glob) continue; // a dangling symlink matched
          throw new NotFoundError('path', given, `source '${given}' not found`);
        }
        const st = fs.fstatSync(fd);
        const name = p.split('/').pop() as string;
        if ((p !== '' && ignored(ignore, p, st.isDirectory())) || (glob && exclude.matches(name, st.isDirectory()))) {
          closeFd(fd);
          if (glob) continue;
          throw new NotFoundError('path', given, `source '${given}' not found (left out by .dockerignore)`);
        }
        const keep = o.parents ? p.split('/').slice(pivot).join('/') : name;
        tops.push({ given, rel: p, keep, fd, st, capability: st.isFile() ? capabilityOf(rootFd, p, st) : undefined });
        opened++;
      }
      if (opened === 0)
        throw new NotFoundError('path', given, `no source files were specified: '${given}' matches no file`);
    }
  } catch (e) {
    closeSelection({ tops, ignore, exclude });
    throw e;
  }
  return { tops, ignore, exclude };
}

/** The `security.capability` of the file `rel` inside the root, when it is the file `st` (not reached through a symlink). */
function capabilityOf(rootFd: number, rel: string, st: fs.Stats): Buffer | undefined {
  const slash = rel.lastIndexOf('/');
  const dir = openInRoot(rootFd, slash === -1 ? '' : rel.slice(0, slash));
  if (dir === undefined) return undefined;
  try {
    const path = fdPath(dir, rel.slice(slash + 1));
    const here = fs.lstatSync(path, { throwIfNoEntry: false });
    return here?.ino === st.ino && here.dev === st.dev ? lgetxattr(path, CAPABILITY) : undefined;
  } finally {
    closeFd(dir);
  }
}

/** The attribute of file capabilities, kept by a copy (as the layer packer keeps it). */
export const CAPABILITY = 'security.capability';

/** Closes the fds of a selection. */
export function closeSelection(sel: Selection): void {
  for (const t of sel.tops) closeFd(t.fd);
  sel.tops.length = 0;
}

/**
 * Walks everything below the directory source `top` (not the directory itself), parents before
 * children, in name order, through directory fds opened with `O_NOFOLLOW` under their parent.
 * Left-out entries are skipped; a left-out directory is still walked when exceptions may
 * re-include something below it, and is yielded only before the first entry it then holds.
 */
export function* walkTree(top: TopSource, sel: Selection, signal?: AbortSignal): Generator<TreeItem> {
  const dfd = fs.openSync(fdPath(top.fd, ''), fs.constants.O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  try {
    yield* walkDir(dfd, '', top.rel, sel, [], signal);
  } finally {
    fs.closeSync(dfd);
  }
}

function* walkDir(
  dfd: number,
  name: string,
  ctxRel: string,
  sel: Selection,
  pending: TreeItem[],
  signal: AbortSignal | undefined,
): Generator<TreeItem> {
  signal?.throwIfAborted();
  const names = fs.readdirSync(fdPath(dfd, ''), { encoding: 'buffer' }).sort(Buffer.compare);
  for (const n of names) {
    const base = n.toString('latin1');
    const child = name === '' ? base : `${name}/${base}`;
    const childCtx = ctxRel === '' ? base : `${ctxRel}/${base}`;
    const path = fdPath(dfd, n);
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined || st.isSocket()) continue; // removed meanwhile; sockets are not copied
    const isDir = st.isDirectory();
    const out =
      (sel.ignore.patterns.length > 0 && sel.ignore.matches(printable(childCtx), isDir)) ||
      (sel.exclude.patterns.length > 0 && sel.exclude.matches(printable(child), isDir));
    const item = { name: child, path, st };
    if (!out) {
      yield* pending.splice(0);
      yield item;
    }
    if (!isDir || (out && !sel.ignore.hasExceptions && !sel.exclude.hasExceptions)) continue;
    let sub: number;
    try {
      sub = fs.openSync(path, fs.constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') continue;
      throw e;
    }
    try {
      const below = out ? [...pending, item] : pending;
      yield* walkDir(sub, child, childCtx, sel, below, signal);
      if (out) pending.length = Math.min(pending.length, below.length); // the parents it yielded are gone
    } finally {
      fs.closeSync(sub);
    }
  }
}

/** The open flags to read a regular file found by a walk (never a symlink; a FIFO swapped in does not block). */
export const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
