/**
 * The build cache: what each build step produced, by a key of everything the step depends on.
 *
 * ```text
 * <root>/build/cache/<key hex>.json   { key, config, created }   the image state after the step
 * <root>/build/locks/<key hex>.lock   held while a process runs the step (flock)
 * ```
 *
 * A step's key is the sha256 of its parent's key, the instruction after variable substitution,
 * the build arguments in scope that it can see, and, for `COPY`/`ADD`, the digest of the files it
 * copies (their names, modes and content; not their mtimes). The entry holds the whole image
 * config after the step (its layers, history and run settings), so a fully cached build finds
 * its final config, byte for byte, and yields the same image id.
 *
 * Two processes that need the same missing step take its lock in turn: the second finds the
 * entry the first wrote and does no work. Entries are written atomically and reference layers by
 * diffID; the image store counts those layers as used ({@link BuildCache.layersInUse}), so
 * removing an image never deletes a layer the cache still hands out.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from '../../state/atomic.js';
import { acquireLock, type LockHandle } from '../../state/lock.js';
import type { OciImageConfig } from '../image-config.js';

/** One cache entry. */
export interface BuildCacheEntry {
  /** The step's key (`sha256:…`). */
  key: string;
  /** The image config after the step. */
  config: OciImageConfig;
  /** When the step ran (RFC 3339). */
  created: string;
}

/** The sha256 key of a step: its parent's key and the parts that decide its result, in order. */
export function stepKey(parent: string, parts: readonly unknown[]): string {
  const h = createHash('sha256');
  h.update(parent);
  for (const p of parts) h.update('\0').update(typeof p === 'string' ? p : JSON.stringify(p));
  return `sha256:${h.digest('hex')}`;
}

/** The build cache of one engine root. */
export class BuildCache {
  /** `<root>/build/cache`. */
  readonly dir: string;
  readonly #locks: string;

  /** A cache under `root`; touches nothing until used. */
  constructor(root: string) {
    this.dir = join(root, 'build', 'cache');
    this.#locks = join(root, 'build', 'locks');
  }

  #file(key: string): string {
    return join(this.dir, `${key.slice('sha256:'.length)}.json`);
  }

  /** The entry of `key`, or undefined (also when its file is unreadable: the step runs again). */
  async get(key: string): Promise<BuildCacheEntry | undefined> {
    try {
      const e = await readJsonFile<BuildCacheEntry>(this.#file(key));
      return e?.key === key ? e : undefined;
    } catch {
      // A torn or foreign file is a cache miss: the step runs again and rewrites it.
      return undefined;
    }
  }

  /** Stores the entry (atomically). Call it under the image store's lock when it adds a layer. */
  async put(entry: BuildCacheEntry): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    await writeFileAtomic(this.#file(entry.key), JSON.stringify(entry));
  }

  /** Holds the step lock of `key` until released: one process runs a missing step at a time. */
  lock(key: string, signal?: AbortSignal): Promise<LockHandle> {
    return acquireLock(join(this.#locks, `${key.slice('sha256:'.length)}.lock`), signal ? { signal } : {});
  }

  /** The diffIDs every entry references: layers the image store must keep. */
  layersInUse(): Set<string> {
    const out = new Set<string>();
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      // No cache yet.
      return out;
    }
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      try {
        const e = JSON.parse(fs.readFileSync(join(this.dir, n), 'utf8')) as BuildCacheEntry;
        for (const d of e.config.rootfs.diff_ids) out.add(d);
      } catch {
        // A torn entry is never handed out (get() rejects it), so its layers need no keeping.
      }
    }
    return out;
  }

  /**
   * Removes every entry (`docker builder prune -a`); the layers only they used go with the
   * image store's next removal or prune. Returns the number of entries removed.
   */
  clear(): number {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      // No cache yet.
      return 0;
    }
    let n = 0;
    for (const name of names) {
      fs.rmSync(join(this.dir, name), { force: true });
      n++;
    }
    return n;
  }
}
