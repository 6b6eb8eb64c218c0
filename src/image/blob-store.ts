/**
 * The content store: immutable blobs (image configs, manifests, compressed layers) named by their
 * sha256 digest, at `<root>/blobs/sha256/<hex>`.
 *
 * A write streams into a private temp file under `<root>/blobs/ingest/` while hashing, checks the
 * expected size and digest when given, fsyncs, then renames into place (containerd's content
 * writer commit). Readers therefore see a blob whole or not at all, and two processes ingesting
 * the same blob at once both succeed: the second rename replaces identical bytes with identical
 * bytes, leaving one file.
 *
 * A temp file is named `<pid>-<start time>-<uuid>` after the process writing it (see `ownerTag`),
 * so the one a killed pull leaves is deleted by the next store opened on the root
 * ({@link BlobStore.sweep}).
 *
 * @module
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdirSync, unlinkSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { digestHex } from './digest.js';
import { ownerIsDead, ownerTag } from '../runtime/proc.js';
import { fsError, isErrno, isNoSpace } from '../state/fs-error.js';

/** A stored blob: its digest and size in bytes. */
export interface BlobInfo {
  /** `sha256:<hex>` of the content. */
  digest: string;
  /** The content's length in bytes. */
  size: number;
}

/** Checks applied by {@link BlobStore.ingest} before the blob becomes visible. */
export interface IngestOptions {
  /** The digest the content must have; a mismatch rejects and stores nothing. */
  expectedDigest?: string;
  /** The size the content must have; a mismatch rejects and stores nothing. */
  expectedSize?: number;
  /** Stops the ingest; the temp file is removed. */
  signal?: AbortSignal;
}

/** What {@link BlobStore.ingest} accepts: bytes, a string (UTF-8), or a stream of bytes. */
export type BlobSource = Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/** A content-addressed blob store rooted at `<root>/blobs`. */
export class BlobStore {
  /** `<root>/blobs`. */
  readonly dir: string;
  readonly #shaDir: string;
  readonly #ingestDir: string;
  #ready: Promise<void> | undefined;

  /** A store under the engine state directory `root`; creates nothing until written to. */
  constructor(root: string) {
    this.dir = join(root, 'blobs');
    this.#shaDir = join(this.dir, 'sha256');
    this.#ingestDir = join(this.dir, 'ingest');
  }

  /** The absolute path a blob has (or would have) in the store. */
  path(digest: string): string {
    return join(this.#shaDir, digestHex(digest));
  }

  /** Whether the blob is stored. */
  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  /** The blob's digest and size, or `undefined` when it is not stored. */
  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.path(digest));
      return { digest, size: st.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Stores `source`, hashing it while it is written, and returns its digest and size.
   *
   * @throws InvalidArgumentError (field `expectedDigest` or `expectedSize`) when the content does
   *   not match; nothing is stored.
   */
  async ingest(source: BlobSource, options: IngestOptions = {}): Promise<BlobInfo> {
    const expectedHex =
      options.expectedDigest === undefined ? undefined : digestHex(options.expectedDigest, 'expectedDigest');
    await this.#ensureDirs();
    const tmp = join(this.#ingestDir, `${ownerTag()}-${randomUUID()}`);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx', 0o644).catch((e: unknown) => {
      throw isNoSpace(e) ? fsError(e, 'open', tmp) : e;
    });
    let committed = false;
    try {
      const write = async (chunk: Uint8Array): Promise<void> => {
        options.signal?.throwIfAborted();
        hash.update(chunk);
        size += chunk.byteLength;
        if (options.expectedSize !== undefined && size > options.expectedSize) {
          throw new InvalidArgumentError(
            'expectedSize',
            `content is larger than the expected ${options.expectedSize} bytes`,
          );
        }
        let off = 0;
        while (off < chunk.byteLength) off += (await fh.write(chunk, off, chunk.byteLength - off)).bytesWritten;
      };
      if (typeof source === 'string') await write(Buffer.from(source, 'utf8'));
      else if (source instanceof Uint8Array) await write(source);
      else
        for await (const chunk of source as AsyncIterable<Uint8Array | string>)
          await write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      if (options.expectedSize !== undefined && size !== options.expectedSize) {
        throw new InvalidArgumentError('expectedSize', `content has ${size} bytes, expected ${options.expectedSize}`);
      }
      const hex = hash.digest('hex');
      if (expectedHex !== undefined && hex !== expectedHex) {
        throw new InvalidArgumentError(
          'expectedDigest',
          `content has digest sha256:${hex}, expected sha256:${expectedHex}`,
        );
      }
      await fh.sync();
      await fh.close();
      await rename(tmp, join(this.#shaDir, hex));
      committed = true;
      await syncDir(this.#shaDir);
      return { digest: `sha256:${hex}`, size };
    } catch (e) {
      throw isNoSpace(e) ? fsError(e, 'write', tmp) : e;
    } finally {
      if (!committed) {
        // Closed above already when the failure came later; the write's error is the one thrown.
        await fh.close().catch(() => undefined);
        await rm(tmp, { force: true });
      }
    }
  }

  /**
   * The blob's content.
   *
   * @throws NotFoundError when it is not stored.
   */
  async read(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.path(digest));
    } catch (e) {
      throw notFound(digest, e);
    }
  }

  /**
   * A stream of the blob's content.
   *
   * @throws NotFoundError when it is not stored.
   */
  async openRead(digest: string): Promise<Readable> {
    const p = this.path(digest);
    const fh = await open(p, 'r').catch((e: unknown) => {
      throw notFound(digest, e);
    });
    return createReadStream(p, { fd: fh, highWaterMark: 1 << 20 });
  }

  /** Removes the blob; returns whether it was there. */
  async delete(digest: string): Promise<boolean> {
    const p = this.path(digest);
    try {
      await stat(p);
    } catch {
      // Not there: nothing to delete.
      return false;
    }
    await rm(p, { force: true });
    return true;
  }

  /** The digests of every stored blob. */
  async list(): Promise<string[]> {
    const names = await readdir(this.#shaDir).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT')) return [] as string[]; // no blob stored yet
      throw e;
    });
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /**
   * Deletes the temp files of ingests whose process no longer runs (a killed pull). Best effort:
   * one that cannot be deleted now is left to the next sweep.
   */
  sweep(): void {
    let names: string[];
    try {
      names = readdirSync(this.#ingestDir);
    } catch {
      // No ingest directory: nothing to sweep (best effort, as documented above).
      return;
    }
    for (const name of names) {
      if (ownerIsDead(name) !== true) continue;
      try {
        unlinkSync(join(this.#ingestDir, name));
      } catch {
        // Deleted by another process's sweep.
      }
    }
  }

  #ensureDirs(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.#shaDir, { recursive: true, mode: 0o700 });
      await mkdir(this.#ingestDir, { recursive: true, mode: 0o700 });
    })().catch((e: unknown) => {
      this.#ready = undefined;
      throw e;
    });
    return this.#ready;
  }
}

function notFound(digest: string, cause: unknown): unknown {
  if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') return cause;
  return new NotFoundError('other', digest, `blob ${digest} is not in the content store`, { cause });
}

/** fsyncs a directory so a rename into it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
