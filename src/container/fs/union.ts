/**
 * Reading a container's file system without mounting it: the union of its upper dir over the
 * image's layer dirs, with overlayfs rules (a 0/0 character device whites out a name, a directory
 * with `trusted.overlay.opaque=y` hides everything below it), and the changes its upper dir holds.
 *
 * Everything here works on host paths the engine owns (the upper dir and the layer store), so
 * plain `lstat`/`readdir` are enough: a symlink found in them is only ever read, never followed.
 *
 * @module
 */
import * as fs from 'node:fs';
import { lgetxattr } from '../../kernel/xattr.js';
import { OPAQUE_XATTR } from '../../image/layer-writer.js';
import { errnoOf } from '../../image/extract-paths.js';
import type { WalkItem } from '../../image/tar-writer.js';

/** One kind of change, as `docker diff` prints it: Added, Changed, Deleted. */
export type ChangeKind = 'A' | 'C' | 'D';

/** One line of `docker diff`. */
export interface ContainerChange {
  /** Absolute path inside the container. */
  path: string;
  /** Added, changed or deleted. */
  kind: ChangeKind;
}

const SLASH = Buffer.from('/');

/** Whether `st` is an overlayfs whiteout (a character device 0/0). */
export function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Whether the directory at `path` is opaque. */
export function isOpaque(path: Buffer): boolean {
  try {
    return lgetxattr(path, OPAQUE_XATTR)?.toString('latin1') === 'y';
  } catch (e) {
    // Gone meanwhile (a running container's upper dir changes as it is read), or a file system
    // without extended attributes: nothing to hide.
    const code = errnoOf(e);
    if (code === 'ENOENT' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return false;
    throw e;
  }
}

function join(a: Buffer, b: Buffer): Buffer {
  return b.length === 0 ? a : Buffer.concat([a, SLASH, b]);
}

function lstat(p: Buffer): fs.Stats | undefined {
  return fs.lstatSync(p, { throwIfNoEntry: false });
}

/**
 * The names in directory `p`, sorted; none when it is gone or no longer a directory (a running
 * container's upper dir changes as it is read). Any other failure is thrown: a diff, export or
 * commit layer must not silently miss a directory's content.
 */
function readdir(p: Buffer): Buffer[] {
  try {
    return fs.readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare);
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

/**
 * Whether `rel` exists in the union of `layers` (topmost first): found before a whiteout of it,
 * of one of its parents, or an opaque parent.
 */
export function existsInLayers(layers: readonly string[], rel: Buffer): boolean {
  const parts = rel
    .toString('latin1')
    .split('/')
    .filter((p) => p !== '');
  for (const layer of layers) {
    let cur = Buffer.from(layer, 'utf8');
    for (let i = 0; i < parts.length; i++) {
      cur = join(cur, Buffer.from(parts[i] as string, 'latin1'));
      const st = lstat(cur);
      if (st === undefined) break;
      if (isWhiteout(st)) return false;
      if (i === parts.length - 1) return true;
      if (!st.isDirectory()) return false;
      if (isOpaque(cur)) {
        // Below this layer the rest of the path is hidden: look only in this layer.
        let deeper = cur;
        for (const p of parts.slice(i + 1)) {
          deeper = join(deeper, Buffer.from(p, 'latin1'));
          const s = lstat(deeper);
          if (s === undefined || isWhiteout(s)) return false;
        }
        return true;
      }
    }
  }
  return false;
}

/**
 * The changes of a container, as `docker diff`: every entry of its upper dir, a whiteout as `D`,
 * an entry that exists in the image as `C` (so the directories above a change are `C`), others
 * as `A`. Sorted by path. The empty stubs the runtime made for `mountPoints` (and directories
 * copied up only to hold them) are not changes, as Docker keeps them in its init layer.
 */
export function upperChanges(
  upper: string,
  layers: readonly string[],
  mountPoints: ReadonlySet<string> = new Set(),
): ContainerChange[] {
  const out: ContainerChange[] = [];
  const root = Buffer.from(upper, 'utf8');
  /** Returns whether anything under `rel` was reported. */
  const walk = (rel: Buffer): boolean => {
    let any = false;
    for (const n of readdir(join(root, rel))) {
      const childRel = rel.length === 0 ? n : join(rel, n);
      const abs = join(root, childRel);
      const st = lstat(abs);
      if (st === undefined) continue;
      const path = `/${childRel.toString('utf8')}`;
      if (isWhiteout(st)) {
        out.push({ path, kind: 'D' });
        any = true;
        continue;
      }
      const kind = existsInLayers(layers, childRel) ? 'C' : 'A';
      if (kind === 'A' && isMountStub(path, abs, st, mountPoints)) continue;
      const at = out.length;
      const below = st.isDirectory() && walk(childRel);
      // A directory copied up only to hold a mount point is not a change.
      if (kind === 'C' && st.isDirectory() && !below && hadMountPointUnder(path, mountPoints)) continue;
      out.splice(at, 0, { path, kind });
      any = true;
    }
    return any;
  };
  walk(Buffer.alloc(0));
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Whether an entry is the empty file or directory the runtime made for a mount target. */
export function isMountStub(path: string, abs: Buffer, st: fs.Stats, mountPoints: ReadonlySet<string>): boolean {
  if (!mountPoints.has(path)) return false;
  if (st.isFile()) return st.size === 0;
  return st.isDirectory() && readdir(abs).length === 0;
}

function hadMountPointUnder(dir: string, mountPoints: ReadonlySet<string>): boolean {
  for (const m of mountPoints) if (m.startsWith(`${dir}/`)) return true;
  return false;
}

/** An entry of {@link walkUpper}'s merge of upper dirs. */
interface LayerEntry {
  name: Buffer;
  path: Buffer;
  st: fs.Stats;
  /** For a directory: the upper dirs' roots that contribute to it, topmost first. */
  roots: Buffer[];
  /** For a directory: it hides what the image's layers hold under its name. */
  opaque: boolean;
}

/**
 * Walks the upper dir as a layer: every entry, whiteouts and opaque directories flagged, parents
 * before children, names sorted; the empty stubs made for `mountPoints` absent from `layers` are
 * left out.
 *
 * `upper` may be several dirs, topmost first (a container forked from a snapshot: its upper dir
 * over the snapshot's layer): they are merged into one layer over `layers`, as overlayfs shows
 * them, whiteouts kept. A directory above one that is opaque, or above a file or whiteout of the
 * same name, is opaque in the result (what hid the image's entry below is merged away).
 */
export function* walkUpper(
  upper: string | readonly string[],
  layers: readonly string[] = [],
  mountPoints: ReadonlySet<string> = new Set(),
): Generator<WalkItem> {
  const uppers = (typeof upper === 'string' ? [upper] : upper).map((d) => Buffer.from(d, 'utf8'));
  function* walk(rel: Buffer, roots: readonly Buffer[]): Generator<WalkItem> {
    const seen = new Map<string, LayerEntry>();
    for (const root of roots) {
      for (const n of readdir(join(root, rel))) {
        const path = join(join(root, rel), n);
        const st = lstat(path);
        if (st === undefined) continue;
        const prev = seen.get(n.toString('latin1'));
        if (prev === undefined) {
          const opaque = st.isDirectory() && isOpaque(path);
          seen.set(n.toString('latin1'), { name: n, path, st, roots: st.isDirectory() ? [root] : [], opaque });
        } else if (prev.st.isDirectory() && !prev.opaque) {
          // Merged into the directory above until something hides the rest.
          if (st.isDirectory()) prev.roots.push(root);
          if (!st.isDirectory() || isOpaque(path)) prev.opaque = true;
        }
      }
    }
    for (const e of [...seen.values()].sort((a, b) => Buffer.compare(a.name, b.name))) {
      if (e.st.isSocket()) continue;
      const childRel = rel.length === 0 ? e.name : join(rel, e.name);
      const name = childRel.toString('latin1');
      if (isWhiteout(e.st)) {
        yield { name, path: e.path, st: e.st, whiteout: true };
        continue;
      }
      if (
        mountPoints.size > 0 &&
        isMountStub(`/${childRel.toString('utf8')}`, e.path, e.st, mountPoints) &&
        !existsInLayers(layers, childRel)
      )
        continue;
      yield { name, path: e.path, st: e.st, ...(e.opaque ? { opaque: true } : {}) };
      if (e.st.isDirectory()) yield* walk(childRel, e.roots);
    }
  }
  yield* walk(Buffer.alloc(0), uppers);
}

interface UnionEntry {
  name: Buffer;
  path: Buffer;
  st: fs.Stats;
  /** For a directory: the layer roots that contribute to it, topmost first. */
  dirLayers: Buffer[];
  /** For a directory: no lower layer may contribute any more. */
  closed: boolean;
}

/**
 * Walks the union of `dirs` (the upper dir first, then the layers, topmost first) as overlayfs
 * presents it: parents before children, names sorted, whiteouts and what they hide left out.
 */
export function* walkUnion(dirs: readonly string[]): Generator<WalkItem> {
  const roots = dirs.map((d) => Buffer.from(d, 'utf8'));
  function* walk(rel: Buffer, layers: Buffer[]): Generator<WalkItem> {
    const seen = new Map<string, UnionEntry | null>();
    for (const layer of layers) {
      const dir = join(layer, rel);
      for (const n of readdir(dir)) {
        const key = n.toString('latin1');
        const path = join(dir, n);
        const st = lstat(path);
        if (st === undefined) continue;
        const prev = seen.get(key);
        if (prev === null) continue;
        if (prev !== undefined) {
          // A directory above: merge this layer's directory into it, until something hides the rest.
          if (!prev.st.isDirectory() || prev.closed) continue;
          if (st.isDirectory()) {
            prev.dirLayers.push(layer);
            if (isOpaque(path)) prev.closed = true;
          } else {
            prev.closed = true;
          }
          continue;
        }
        if (isWhiteout(st)) {
          seen.set(key, null);
          continue;
        }
        const isDir = st.isDirectory();
        seen.set(key, { name: n, path, st, dirLayers: isDir ? [layer] : [], closed: isDir && isOpaque(path) });
      }
    }
    const entries = [...seen.values()]
      .filter((e): e is UnionEntry => e !== null)
      .sort((a, b) => Buffer.compare(a.name, b.name));
    for (const e of entries) {
      if (e.st.isSocket()) continue;
      const childRel = rel.length === 0 ? e.name : join(rel, e.name);
      yield { name: childRel.toString('latin1'), path: e.path, st: e.st };
      if (e.st.isDirectory()) yield* walk(childRel, e.dirLayers);
    }
  }
  yield* walk(Buffer.alloc(0), roots);
}
