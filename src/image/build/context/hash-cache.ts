/**
 * Content hashes of files, remembered by what `stat` says of them (device, inode, size, mtime,
 * ctime), so that a rebuild does not read unchanged files again. Kept in one JSON file under a
 * directory the caller gives (e.g. `<engine root>/build/hashes/`), replaced atomically: several
 * processes may share it; one may lose another's new entries (they are hashed again), never see
 * a wrong one, since every entry is checked against a fresh `stat`.
 *
 * A file changed in the same clock tick as it was hashed would keep its mtime and ctime ("racy
 * git"): entries whose ctime is not clearly older than the start of the hashing are not kept.
 *
 * @module
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { readJsonFileSync, writeFileAtomicSync } from '../../../state/atomic.js';

/** Entries kept at most (the oldest go first). */
const MAX_ENTRIES = 200_000;
/** How much older than the hashing's start a file's ctime must be for its hash to be kept (ms). */
const RACY_MS = 50;
const FILE = 'hashes.json';

interface Stored {
  v: 1;
  /** `dev:ino` → `size:mtimeMs:ctimeMs:sha256hex`. */
  entries: Record<string, string>;
}

/** What identifies a file's content version. */
function stamp(st: fs.Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** The remembered content hashes of one directory's cache file. */
export class HashCache {
  readonly #file: string | undefined;
  readonly #entries: Map<string, string>;
  readonly #started = Date.now();
  #added = 0;

  private constructor(file: string | undefined, entries: Map<string, string>) {
    this.#file = file;
    this.#entries = entries;
  }

  /** The cache kept in `dir` (made when missing), or one that remembers nothing when `dir` is undefined. */
  static open(dir: string | undefined): HashCache {
    if (dir === undefined) return new HashCache(undefined, new Map());
    const file = join(dir, FILE);
    let stored: Stored | undefined;
    try {
      stored = readJsonFileSync<Stored>(file);
    } catch {
      stored = undefined; // unreadable or corrupt: start over
    }
    const entries =
      stored?.v === 1 && typeof stored.entries === 'object' && stored.entries !== null
        ? new Map(Object.entries(stored.entries))
        : new Map<string, string>();
    return new HashCache(file, entries);
  }

  /** The remembered sha256 (hex) of the file `st` describes, when it has not changed since. */
  get(st: fs.Stats): string | undefined {
    const v = this.#entries.get(`${st.dev}:${st.ino}`);
    if (typeof v !== 'string') return undefined;
    const at = v.lastIndexOf(':');
    return v.slice(0, at) === stamp(st) ? v.slice(at + 1) : undefined;
  }

  /** Remembers `sha` for the file `st` describes (not when it changed too recently to be trusted). */
  set(st: fs.Stats, sha: string): void {
    if (st.ctimeMs > this.#started - RACY_MS || st.mtimeMs > this.#started - RACY_MS) return;
    const key = `${st.dev}:${st.ino}`;
    this.#entries.delete(key);
    this.#entries.set(key, `${stamp(st)}:${sha}`);
    this.#added++;
  }

  /** Writes the new entries (merged over what other processes wrote meanwhile), when there are any. */
  save(): void {
    if (this.#file === undefined || this.#added === 0) return;
    fs.mkdirSync(join(this.#file, '..'), { recursive: true });
    let merged = this.#entries;
    try {
      const disk = readJsonFileSync<Stored>(this.#file);
      if (disk?.v === 1) merged = new Map([...Object.entries(disk.entries), ...this.#entries]);
    } catch {
      // corrupt: replaced by ours
    }
    const all = [...merged];
    const kept = all.length > MAX_ENTRIES ? all.slice(all.length - MAX_ENTRIES) : all;
    const out: Stored = { v: 1, entries: Object.fromEntries(kept) };
    writeFileAtomicSync(this.#file, JSON.stringify(out), { fsync: false });
    this.#added = 0;
  }
}
