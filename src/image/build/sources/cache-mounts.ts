/**
 * The store of `RUN --mount=type=cache` directories, kept under the engine's root
 * (`<root>/build/cache-mounts`) and shared by every process that uses that root.
 *
 * ```text
 * cache-mounts/<key>/0/        the cache's directory (what is mounted)
 * cache-mounts/<key>/0.lock    its flock: shared by `shared` users, exclusive for `locked` and `private`
 * cache-mounts/<key>/1/ …      more directories, made for `private` users while the others are busy
 * ```
 *
 * The key is a digest of the mount's id and of what makes BuildKit start another cache for the
 * same id (its owner and mode, and the `from` it is seeded from). Sharing as BuildKit's:
 *
 * - `shared`: any number of users at once, in any process (a shared flock on directory 0);
 * - `locked`: one user at a time; others wait (an exclusive flock on directory 0);
 * - `private`: the first directory nobody uses, or a new one when all are in use (exclusive flocks
 *   tried without waiting).
 *
 * A directory is made on first use with the mount's uid, gid and mode (and the `seed`, for a
 * `from=`), under a temporary name renamed into place, so a user never sees it half made.
 * `noCache` empties it first, as BuildKit's `--no-cache` does: the old content is renamed aside
 * under the exclusive lock and deleted. Locks are flocks, which the kernel drops with their
 * process, so a build killed with SIGKILL leaves no stale lock; what it left half made (a
 * temporary directory) is deleted by the next user that holds the directory exclusively.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ConflictError, TimeoutError } from '../../../errors.js';
import { acquireLock, type LockHandle } from '../../../state/lock.js';
import type { CacheMount } from './run-mount.js';

/** Options of {@link CacheMounts.acquire}. */
export interface CacheAcquireOptions {
  /** Empty the cache before use (the build's `noCache`). */
  noCache: boolean;
  /** What seeds the cache (the `from` stage's or image's identity); another base is another cache, as in BuildKit. */
  base?: string;
  /** Fills a new cache directory (from `from`/`source`) before anyone sees it. */
  seed?: (dir: string) => Promise<void>;
  /** Gives up waiting for a `locked` cache. */
  signal?: AbortSignal;
}

/** A cache directory in use; release it when the step is done. */
export interface CacheLease {
  /** The directory to mount at the mount's target. */
  path: string;
  /** Ends this use (others may then lock or empty it). Idempotent. */
  release(): Promise<void>;
}

/** Most directories one cache gets for `private` users at once. */
const MAX_PRIVATE = 256;

/** The cache-mount store of one engine root (see the module's notes). */
export class CacheMounts {
  /** The store's directory, `<engine root>/build/cache-mounts`. */
  readonly dir: string;

  /** The store in `dir` (made when first used). */
  constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * A directory for the cache mount `m`, as its sharing mode says (see the module's notes).
   *
   * @throws TimeoutError or `signal.reason` when waiting for a `locked` cache is given up.
   *
   * @example
   * ```ts
   * const lease = await store.acquire(parseRunMount('type=cache,target=/root/.npm') as CacheMount, { noCache: false });
   * try { ... mount lease.path ... } finally { await lease.release(); }
   * ```
   */
  async acquire(m: CacheMount, opts: CacheAcquireOptions): Promise<CacheLease> {
    const keyDir = join(this.dir, cacheKey(m, opts.base));
    const make = { uid: m.uid, gid: m.gid, mode: m.mode, seed: opts.seed };
    if (m.sharing === 'private') {
      for (let n = 0; n < MAX_PRIVATE; n++) {
        const lock = await tryLock(join(keyDir, `${n}.lock`));
        if (lock !== undefined) return lease(lock, () => prepare(keyDir, n, make, opts.noCache));
      }
      throw new ConflictError(
        'IN_USE',
        `cache mount '${m.id}' has ${MAX_PRIVATE} private directories in use; retry later`,
      );
    }
    const file = join(keyDir, '0.lock');
    if (m.sharing === 'locked') {
      const lock = await acquireLock(file, { signal: opts.signal });
      return lease(lock, () => prepare(keyDir, 0, make, opts.noCache));
    }
    if (opts.noCache) {
      const lock = await acquireLock(file, { signal: opts.signal });
      await lease(lock, () => prepare(keyDir, 0, make, true)).then((l) => l.release());
    }
    const lock = await acquireLock(file, { shared: true, signal: opts.signal });
    return lease(lock, () => prepare(keyDir, 0, make, false, false));
  }
}

/** How a cache directory is made. */
interface Make {
  uid: number;
  gid: number;
  mode: number;
  seed: ((dir: string) => Promise<void>) | undefined;
}

/** The cache's key: a digest of its id and of what makes BuildKit keep another cache for it. */
function cacheKey(m: CacheMount, base: string | undefined): string {
  const what = JSON.stringify([m.id, m.uid, m.gid, m.mode, m.from ?? null, m.source ?? null, base ?? null]);
  return createHash('sha256').update(what).digest('hex').slice(0, 32);
}

/** Runs `ready` while holding `lock`, and hands out the directory it returns; releases on failure. */
async function lease(lock: LockHandle, ready: () => Promise<string>): Promise<CacheLease> {
  let path: string;
  try {
    path = await ready();
  } catch (e) {
    lock.release();
    throw e;
  }
  return { path, release: async () => lock.release() };
}

/** The exclusive lock on `file` when nobody holds it (here or in another process), else undefined. */
async function tryLock(file: string): Promise<LockHandle | undefined> {
  try {
    return await acquireLock(file, { timeout: 0 });
  } catch (e) {
    if (e instanceof TimeoutError) return undefined;
    throw e;
  }
}

/**
 * Makes directory `n` of the cache in `keyDir` when missing, or empties it when `empty`; returns
 * its path. `exclusive`: the caller holds its lock exclusively (then leftovers of killed users of
 * `n` are deleted).
 */
async function prepare(keyDir: string, n: number, make: Make, empty: boolean, exclusive = true): Promise<string> {
  const dir = join(keyDir, String(n));
  if (exclusive) sweep(keyDir, n);
  if (empty && fs.existsSync(dir)) {
    const old = join(keyDir, `.old-${n}-${randomBytes(6).toString('hex')}`);
    fs.renameSync(dir, old);
    fs.rmSync(old, { recursive: true, force: true });
  }
  if (fs.existsSync(dir)) return dir;
  const tmp = join(keyDir, `.new-${n}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(tmp, { mode: 0o700 });
  try {
    fs.chownSync(tmp, make.uid, make.gid);
    fs.chmodSync(tmp, make.mode);
    await make.seed?.(tmp);
    fs.renameSync(tmp, dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
    } catch (cleanup) {
      throw new AggregateError([e, cleanup], `cannot make cache directory ${dir}, nor remove ${tmp}`, {
        cause: cleanup,
      });
    }
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e; // else: another shared user made it first
  }
  return dir;
}

/** Deletes what users of directory `n` killed mid-way left (call only with its lock held exclusively). */
function sweep(keyDir: string, n: number): void {
  let names: string[];
  try {
    names = fs.readdirSync(keyDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const name of names) {
    if (name.startsWith(`.new-${n}-`) || name.startsWith(`.old-${n}-`)) {
      fs.rmSync(join(keyDir, name), { recursive: true, force: true });
    }
  }
}
