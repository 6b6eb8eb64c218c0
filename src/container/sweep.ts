/**
 * Deleting container directories off the caller's path, and sweeping what a removal killed in the
 * middle left behind.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { removeTree } from '../state/remove-tree.js';
import type { ContainerCore } from './context.js';

/** Prefix of directories being deleted in the background (see {@link discardDir}). */
const TRASH_PREFIX = '.trash-';

/** How old a container directory without a record must be before a sweep deletes it (a create makes the directory first). */
const ORPHAN_GRACE_MS = 60_000;
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/**
 * Deletes a container's directory off the caller's path and off the event loop: renamed away at
 * once (atomic: no later start or create can see it half removed), then deleted on the thread
 * pool ({@link removeTree}). What a crash leaves behind is deleted by the next engine's sweep
 * ({@link sweepTrash}). The rename is done when this returns; the promise settles once the
 * directory is deleted (a caller that needs the space back at once awaits it). Never rejects.
 */
export async function discardDir(dir: string): Promise<void> {
  const trash = join(dirname(dir), `${TRASH_PREFIX}${basename(dir)}-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(dir, trash);
  } catch (e) {
    // ENOENT: gone already. Otherwise it cannot be moved away: it is deleted where it is.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') await removeTree(dir);
    return;
  }
  await removeTree(trash);
}

/** An empty listing for a directory that does not exist (yet, or any more); any other error is thrown. */
function noDir(e: unknown): never[] {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  return [];
}

/**
 * Deletes what a removal killed in the middle left in `dir`: the trash of {@link discardDir},
 * and container directories whose record is gone (killed between deleting the record and moving
 * the directory) once older than {@link ORPHAN_GRACE_MS}. `recordsDir` holds the records.
 */
export async function sweepTrash(dir: string, recordsDir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(noDir);
  const records = new Set(dir === recordsDir ? entries.map((e) => e.name) : await readdir(recordsDir).catch(noDir));
  const work: Promise<unknown>[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.name.startsWith(TRASH_PREFIX)) work.push(removeTree(path));
    else if (e.isDirectory() && CONTAINER_ID.test(e.name) && !records.has(`${e.name}.json`)) {
      work.push(
        stat(path).then((st) => (Date.now() - st.mtimeMs > ORPHAN_GRACE_MS ? discardDir(path) : undefined), noDir),
      );
    }
  }
  await Promise.all(work);
}

/**
 * Once per engine, before its first create: records the exit of every container whose owner
 * died (`refresh`, which lists the active records and waits for the releases that follow:
 * this releases their cgroups, endpoints and volumes), deletes the leftovers of removals killed
 * in the middle in the records' directory `dir` and the run root, and frees endpoints still held
 * for containers that no longer exist (a crash in the middle of a removal). Never rejects.
 */
export async function sweepOnce(core: ContainerCore, dir: string, refresh: () => Promise<void>): Promise<void> {
  try {
    await refresh(); // records the exits nobody saw
    await Promise.all([dir, dirname(core.paths('0'.repeat(64)).runDir)].map((d) => sweepTrash(d, dir)));
    for (const id of (await core.ctx.networks?.endpointContainerIds?.()) ?? []) {
      if (!(await core.records.has(id))) await core.ctx.networks?.releaseAttachment(id);
    }
  } catch {
    // Housekeeping: what it could not free is there for the next engine's sweep; a create
    // does not depend on it (and reports its own failures).
  }
}

/**
 * Once per engine, before its first container call (a get, a list, a create): records the exit of
 * every container recorded as active whose owner process died (killed, so nobody saw the exit),
 * which releases its cgroup, endpoint and volumes and removes the `autoRemove` ones (record and
 * cgroup, as their owner would have), so that no call of the new engine sees them. The calls the
 * reaping makes itself (an auto-removal's lookups) do not wait for it.
 */
export class DeadOwnerReaper {
  readonly #dir: () => string;
  readonly #reap: () => Promise<unknown>;
  readonly #inside = new AsyncLocalStorage<true>();
  #done: Promise<void> | undefined;

  /**
   * `reap` refreshes every active record from the kernel and waits for the releases that follow;
   * it is not called when the records' directory (`dir()`) holds no record: a read makes nothing.
   */
  constructor(dir: () => string, reap: () => Promise<unknown>) {
    this.#dir = dir;
    this.#reap = reap;
  }

  /**
   * Resolves once the reaping is over (the first call starts it); at once inside the reaping.
   * Never rejects: what it could not record, the next read of that container records.
   */
  ready(): Promise<void> {
    if (this.#inside.getStore()) return Promise.resolve();
    this.#done ??= this.#inside
      .run(true, () => this.#reapIfAny())
      .then(
        () => undefined,
        () => undefined,
      );
    return this.#done;
  }

  async #reapIfAny(): Promise<void> {
    const names = await readdir(this.#dir()).catch(noDir);
    if (names.some((n) => n.endsWith('.json'))) await this.#reap();
  }
}
