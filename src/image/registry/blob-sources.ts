/**
 * Where the compressed forms of a layer are known to be: for each diffID, the compressed blobs
 * (digest, size, media type) berth pulled it as or pushed it as, and the repositories that hold
 * them. Push uses it to skip blobs a registry has, to mount them from another repository of the
 * same registry, and to find the digest of a layer it compressed before without compressing it
 * again (Docker's `distribution/metadata`, v2metadata).
 *
 * ```text
 * <root>/images/distribution/<diffID hex>.json   { "sources": [{ digest, size, mediaType, repos: ["localhost:5000/a/b"] }] }
 * ```
 *
 * The files are hints: a lost update (two processes writing at once) only costs an upload.
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFileSync, writeFileAtomicSync } from '../../state/atomic.js';
import { digestHex } from '../digest.js';

/** One compressed form of a layer. */
export interface BlobSource {
  /** Digest of the compressed blob. */
  digest: string;
  /** Its size in bytes. */
  size: number;
  /** Its media type (gzip, zstd or plain tar). */
  mediaType: string;
  /** Repositories known to hold it, as `domain/path`. */
  repos: string[];
}

const MAX_REPOS = 16;

/** The diffID → compressed blob hints of one engine root. */
export class BlobSources {
  readonly #dir: string;

  /** Hints under `<root>/images/distribution`; touches nothing until used. */
  constructor(root: string) {
    this.#dir = join(root, 'images', 'distribution');
  }

  /** The known compressed forms of layer `diffId` (empty when none). */
  get(diffId: string): BlobSource[] {
    const raw = readJsonFileSync<{ sources?: BlobSource[] }>(join(this.#dir, `${digestHex(diffId, 'diffId')}.json`));
    return Array.isArray(raw?.sources) ? raw.sources : [];
  }

  /** Records that `repo` (`domain/path`, optional) holds `source` as a form of `diffId`. */
  add(diffId: string, source: Omit<BlobSource, 'repos'>, repo?: string): void {
    const all = this.get(diffId);
    let entry = all.find((s) => s.digest === source.digest);
    if (entry === undefined) {
      entry = { ...source, repos: [] };
      all.push(entry);
    }
    if (repo !== undefined && !entry.repos.includes(repo)) entry.repos = [repo, ...entry.repos].slice(0, MAX_REPOS);
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    writeFileAtomicSync(join(this.#dir, `${digestHex(diffId, 'diffId')}.json`), JSON.stringify({ sources: all }), {
      fsync: false,
    });
  }
}
