/**
 * The image metadata: one record per image and one index of references, both JSON files
 * replaced atomically (temp file + rename), and changed only under the store lock.
 *
 * ```text
 * <root>/images/
 *   records/<id hex>.json    { id, layers: [diffID…], size, created }
 *   repositories.json        { "refs": { "docker.io/library/busybox:latest": "sha256:…" } }
 *   lock                     the store lock (also guards layer commits and removals)
 * ```
 *
 * Readers take no lock: each file is always whole. A reader that sees a reference to a record
 * deleted meanwhile treats the image as missing.
 *
 * @module
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { BerthError } from '../errors.js';
import { readdirIfExists } from '../state/fs-error.js';
import { readJsonFileSync, writeFileAtomicSync } from '../state/atomic.js';
import { withLock } from '../state/lock.js';
import { digestHex } from './digest.js';

/** What the store keeps about one image; the config itself is a blob named by `id`. */
export interface ImageRecord {
  /** `sha256:<hex>` of the image config (also its blob digest). */
  id: string;
  /** The layers' diffIDs, bottom first (the config's `rootfs.diff_ids`). */
  layers: string[];
  /** Sum of the layers' sizes in bytes. */
  size: number;
  /** Creation time from the config (RFC 3339). */
  created: string;
}

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/);
const recordSchema = z.object({
  id: digest,
  layers: z.array(digest),
  size: z.number().nonnegative(),
  created: z.string(),
});
const refsSchema = z.object({ refs: z.record(z.string(), digest) });

/** The image records and the reference index of one engine root. */
export class ImageRecords {
  /** `<root>/images`. */
  readonly dir: string;
  /** The store lock. */
  readonly lockFile: string;
  readonly #records: string;
  readonly #refsFile: string;

  /** The metadata under the engine root `root`; touches nothing until used. */
  constructor(root: string) {
    this.dir = join(root, 'images');
    this.lockFile = join(this.dir, 'lock');
    this.#records = join(this.dir, 'records');
    this.#refsFile = join(this.dir, 'repositories.json');
  }

  /** Runs `fn` holding the store lock (exclusive, across processes). Not reentrant. */
  locked<T>(fn: () => T | Promise<T>): Promise<T> {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return withLock(this.lockFile, fn);
  }

  /** The record of image `id`, or undefined. */
  get(id: string): ImageRecord | undefined {
    const file = join(this.#records, `${digestHex(id, 'id')}.json`);
    const raw = readJsonFileSync(file);
    if (raw === undefined) return undefined;
    const r = recordSchema.safeParse(raw);
    if (!r.success)
      throw new BerthError('INTERNAL', `image record ${file} is invalid; remove it and re-import the image`, {
        cause: r.error,
      });
    return r.data;
  }

  /** Every image record. */
  list(): ImageRecord[] {
    const names = readdirIfExists(this.#records);
    const out: ImageRecord[] = [];
    for (const n of names) {
      const m = /^([a-f0-9]{64})\.json$/.exec(n);
      const rec = m ? this.get(`sha256:${m[1]}`) : undefined;
      if (rec) out.push(rec);
    }
    return out;
  }

  /** Writes a record. **Hold the lock.** */
  put(record: ImageRecord): void {
    writeFileAtomicSync(
      join(this.#records, `${digestHex(record.id, 'id')}.json`),
      JSON.stringify(recordSchema.parse(record)),
    );
  }

  /** Deletes a record. **Hold the lock.** Returns whether it existed. */
  delete(id: string): boolean {
    try {
      fs.unlinkSync(join(this.#records, `${digestHex(id, 'id')}.json`));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** The reference index: canonical reference → image id. */
  refs(): Record<string, string> {
    const raw = readJsonFileSync(this.#refsFile);
    if (raw === undefined) return {};
    const r = refsSchema.safeParse(raw);
    if (!r.success)
      throw new BerthError('INTERNAL', `${this.#refsFile} is invalid; remove it (tags are lost, images stay)`, {
        cause: r.error,
      });
    return r.data.refs;
  }

  /** Replaces the reference index. **Hold the lock.** */
  setRefs(refs: Record<string, string>): void {
    const sorted = Object.fromEntries(Object.entries(refs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    writeFileAtomicSync(this.#refsFile, JSON.stringify({ refs: sorted }, null, 1));
  }
}
