/**
 * Scratch roots: a step's image mounted (detached: an fd, in no mount table) as an overlay with a
 * fresh upper directory, so that `COPY`, `ADD` and `WORKDIR` write into it with overlayfs's own
 * copy-up, and the upper directory becomes the step's layer. Also a read-only view of a stage's
 * or an image's files, for `COPY --from`.
 *
 * Every scratch directory lives under `<root>/build/tmp/<owner tag>-…`; one left by a killed
 * process is removed by {@link sweepScratch} when the next build starts.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { mountDetachedOverlay } from '../../container/fs/copy.js';
import { walkUpper } from '../../container/fs/union.js';
import { ownerIsDead, ownerTag } from '../../runtime/proc.js';
import { removeTree } from '../../state/remove-tree.js';
import type { LayerStore, StagedLayer } from '../layer-store.js';
import { attachCleanupErrors } from '../../errors.js';
import { packItems } from '../tar-writer.js';

/**
 * Runs `fn` with a private directory under `<root>/build/tmp`, removed after it (an error
 * removing it is attached to `fn`'s own error, or thrown when `fn` succeeded).
 */
export async function withScratchDir<T>(root: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const base = join(root, 'build', 'tmp');
  fs.mkdirSync(base, { recursive: true, mode: 0o700 });
  const dir = join(base, `${ownerTag()}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  let out: T;
  try {
    out = await fn(dir);
  } catch (e) {
    const cleanup = await removeTree(dir).then(
      () => [],
      (c: unknown) => [c],
    );
    throw attachCleanupErrors(e, cleanup);
  }
  await removeTree(dir);
  return out;
}

/** Removes the scratch directories of processes that no longer run. */
export async function sweepScratch(root: string): Promise<void> {
  const base = join(root, 'build', 'tmp');
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    // No build ran on this root yet.
    return;
  }
  for (const n of names) if (ownerIsDead(n) === true) await removeTree(join(base, n));
}

/**
 * Mounts `lowers` (layer directories, topmost first; none: an empty root) under a fresh upper
 * directory made in `dir`, runs `fn` on the mount's path and unmounts; returns the upper
 * directory (still in `dir`).
 */
async function inOverlay(
  dir: string,
  lowers: readonly string[],
  fn: (rootPath: string) => Promise<void>,
): Promise<string> {
  const [upper, work, empty] = ['upper', 'work', 'empty'].map((n) => join(dir, n)) as [string, string, string];
  for (const d of [upper, work, empty]) fs.mkdirSync(d, { mode: 0o755 });
  const fd = mountDetachedOverlay(upper, work, lowers.length > 0 ? lowers : [empty]);
  try {
    await fn(`/proc/self/fd/${fd}`);
  } finally {
    fs.closeSync(fd);
  }
  return upper;
}

/**
 * Runs `fn` on the image of `lowers` (layer directories, topmost first) with a fresh upper
 * directory, then stages the upper directory as a layer (undefined when `fn` changed nothing).
 * With `link` (`COPY --link`) `fn` writes into an empty directory instead, independent of the
 * image.
 */
export async function writeLayer(
  root: string,
  layers: LayerStore,
  lowers: readonly string[],
  fn: (rootPath: string) => Promise<void>,
  options: { link?: boolean; signal?: AbortSignal } = {},
): Promise<StagedLayer | undefined> {
  return withScratchDir(root, async (dir) => {
    let upper = join(dir, 'link');
    if (options.link === true) {
      fs.mkdirSync(upper, { mode: 0o755 });
      await fn(upper);
    } else upper = await inOverlay(dir, lowers, fn);
    if (fs.readdirSync(upper).length === 0) return undefined;
    return layers.stage(packItems(walkUpper(upper)), options.signal ? { signal: options.signal } : {});
  });
}

/** Runs `fn` on a view of `lowers` (topmost first) whose writes are discarded: what `COPY --from` reads. */
export async function withReadOnlyRoot<T>(
  root: string,
  lowers: readonly string[],
  fn: (rootPath: string) => Promise<T>,
): Promise<T> {
  return withScratchDir(root, async (dir) => {
    let out: T | undefined;
    await inOverlay(dir, lowers, async (path) => {
      out = await fn(path);
    });
    return out as T;
  });
}
