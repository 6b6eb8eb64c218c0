/**
 * A client of one registry (OCI distribution API) for one operation, over undici.
 *
 * ```text
 * request ─▶ ping /v2/ once per registry (https; http fallback only when insecure or loopback)
 *         ─▶ Authorization: none | Basic | Bearer (token per scope set, cached until it expires)
 *         ─▶ send ─┬─ 3xx (GET/HEAD) ─▶ follow; credentials only to the same host
 *                  ├─ 401 ─▶ re-read the challenge, fresh token, retry once ─▶ REGISTRY_AUTH
 *                  ├─ 5xx / 429 / dropped connection ─▶ retry with backoff ─▶ REGISTRY_UNREACHABLE
 *                  └─ 404 ─▶ IMAGE_NOT_FOUND; other errors ─▶ REGISTRY (with the spec's error code)
 * ```
 *
 * Every manifest and blob is checked against its digest: manifests before they are returned, blob
 * streams when they end (a mismatch fails the stream, so its consumer discards what it made).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { RegistryError } from '../../errors.js';
import { headerString, readLimited, responseError } from './responses.js';
import { RegistryTransport, type Response } from './transport.js';

/** A manifest as fetched: its bytes (verified), media type and digest. */
export interface FetchedManifest {
  /** The raw bytes, exactly as the registry sent them. */
  bytes: Buffer;
  /** The media type (from `Content-Type`, else the manifest's `mediaType`). */
  mediaType: string;
  /** `sha256:` of the bytes. */
  digest: string;
}

/** A blob being downloaded. */
export interface BlobDownload {
  /** Its length, when the registry said. */
  size: number | undefined;
  /** Its bytes; the iteration fails at the end when they do not match the digest. */
  body: AsyncIterable<Buffer>;
}

const MANIFEST_LIMIT = 4 << 20;

/** A client of one registry, with the credentials of one operation. */
export class RegistryClient extends RegistryTransport {
  /** The pull scope of `repo`. */
  static pullScope(repo: string): string {
    return `repository:${repo}:pull`;
  }

  /** The push scope of `repo` (push needs pull too). */
  static pushScope(repo: string): string {
    return `repository:${repo}:pull,push`;
  }

  // ── manifests ─────────────────────────────────────────────────────────────────────────────

  /**
   * Fetches a manifest (or index) by tag or digest, accepting `accept` media types, and verifies
   * its digest: against `reference` when it is a digest, else against `Docker-Content-Digest`.
   *
   * @throws RegistryError (`IMAGE_NOT_FOUND` on 404, `REGISTRY` with `DIGEST_INVALID` on a mismatch).
   */
  async getManifest(
    repo: string,
    reference: string,
    accept: readonly string[],
    signal?: AbortSignal,
  ): Promise<FetchedManifest> {
    const url = await this.url(`${repo}/manifests/${reference}`, signal);
    const res = await this.send('GET', url, {
      headers: { accept: accept.join(', ') },
      scopes: [RegistryClient.pullScope(repo)],
      signal,
    });
    const what = `manifest ${this.domain}/${repo}:${reference}`;
    if (res.statusCode !== 200) throw await responseError(res, this.domain, what);
    const bytes = await readLimited(
      res.body,
      MANIFEST_LIMIT,
      () => new RegistryError('REGISTRY', this.domain, `${what} is larger than ${MANIFEST_LIMIT} bytes`),
    );
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const expected = reference.includes(':') ? reference : headerString(res.headers['docker-content-digest']);
    if (expected !== undefined && expected.startsWith('sha256:') && expected !== digest) {
      throw new RegistryError(
        'REGISTRY',
        this.domain,
        `${what} has digest ${digest}, expected ${expected}; the registry sent wrong content`,
        { registryCode: 'DIGEST_INVALID' },
      );
    }
    if (expected !== undefined && !expected.startsWith('sha256:') && reference.includes(':')) {
      throw new RegistryError('REGISTRY', this.domain, `${what}: only sha256 digests are supported`, {
        registryCode: 'DIGEST_INVALID',
      });
    }
    let mediaType = headerString(res.headers['content-type'])?.split(';')[0]?.trim() ?? '';
    if (!mediaType || mediaType === 'application/json' || mediaType === 'text/plain') {
      try {
        mediaType = String((JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? mediaType);
      } catch {
        // checked by the caller
      }
    }
    return { bytes, mediaType, digest };
  }

  /**
   * Uploads a manifest under `reference` (tag or digest); returns its digest.
   *
   * @throws RegistryError.
   */
  async putManifest(
    repo: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const url = await this.url(`${repo}/manifests/${reference}`, signal);
    const res = await this.send('PUT', url, {
      headers: { 'content-type': mediaType },
      body: bytes,
      scopes: [RegistryClient.pushScope(repo)],
      signal,
    });
    if (res.statusCode !== 201 && res.statusCode !== 200)
      throw await responseError(res, this.domain, `pushing manifest ${this.domain}/${repo}:${reference}`);
    await res.body.dump();
    return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  }

  // ── blobs ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Starts downloading a blob (following redirects). The returned body checks the digest and the
   * `expectedSize` (when given) as it streams.
   *
   * @throws RegistryError (`IMAGE_NOT_FOUND` on 404, …); the body fails with `REGISTRY`
   *   (`DIGEST_INVALID` / `SIZE_INVALID`) on a mismatch.
   */
  async openBlob(
    repo: string,
    digest: string,
    options: { expectedSize?: number; signal?: AbortSignal } = {},
  ): Promise<BlobDownload> {
    const url = await this.url(`${repo}/blobs/${digest}`, options.signal);
    const res = await this.send('GET', url, { scopes: [RegistryClient.pullScope(repo)], signal: options.signal });
    if (res.statusCode !== 200) throw await responseError(res, this.domain, `blob ${digest} of ${repo}`);
    const length = Number(headerString(res.headers['content-length']));
    return {
      size: Number.isFinite(length) && length >= 0 ? length : options.expectedSize,
      body: this.#verified(res.body, digest, options.expectedSize),
    };
  }

  async *#verified(body: Response['body'], digest: string, expectedSize: number | undefined): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    let size = 0;
    let done = false;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.byteLength;
        if (expectedSize !== undefined && size > expectedSize) {
          throw new RegistryError(
            'REGISTRY',
            this.domain,
            `blob ${digest} is larger than the ${expectedSize} bytes its manifest says`,
            { registryCode: 'SIZE_INVALID' },
          );
        }
        hash.update(chunk);
        yield chunk;
      }
      done = true;
    } finally {
      if (!done) body.destroy();
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest)
      throw new RegistryError(
        'REGISTRY',
        this.domain,
        `blob ${digest} arrived with digest ${got}; the registry sent wrong content`,
        { registryCode: 'DIGEST_INVALID' },
      );
    if (expectedSize !== undefined && size !== expectedSize) {
      throw new RegistryError('REGISTRY', this.domain, `blob ${digest} has ${size} bytes, expected ${expectedSize}`, {
        registryCode: 'SIZE_INVALID',
      });
    }
  }

  /** Reads a whole (small) blob and verifies it. */
  async fetchBlob(
    repo: string,
    digest: string,
    options: { expectedSize?: number; signal?: AbortSignal } = {},
  ): Promise<Buffer> {
    const { body } = await this.openBlob(repo, digest, options);
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    return Buffer.concat(parts);
  }

  /** The blob's size when the repository has it (HEAD), else undefined. */
  async hasBlob(repo: string, digest: string, signal?: AbortSignal): Promise<number | undefined> {
    const url = await this.url(`${repo}/blobs/${digest}`, signal);
    const res = await this.send('HEAD', url, { scopes: [RegistryClient.pushScope(repo)], signal });
    await res.body.dump();
    if (res.statusCode === 200) return Number(headerString(res.headers['content-length']) ?? 0);
    if (res.statusCode === 404) return undefined;
    throw await responseError(res, this.domain, `checking blob ${digest} in ${repo}`);
  }

  /**
   * Starts an upload session, or mounts the blob `mount.digest` from the repository `mount.from`
   * of the same registry. Returns `{ mounted: true }` when the mount worked, else the session's URL.
   */
  async startUpload(
    repo: string,
    mount?: { digest: string; from: string },
    signal?: AbortSignal,
  ): Promise<{ mounted: true } | { mounted: false; location: URL }> {
    const url = await this.url(`${repo}/blobs/uploads/`, signal);
    const scopes = [RegistryClient.pushScope(repo)];
    if (mount !== undefined) {
      url.searchParams.set('mount', mount.digest);
      url.searchParams.set('from', mount.from);
      scopes.push(RegistryClient.pullScope(mount.from));
    }
    const res = await this.send('POST', url, { scopes, signal, body: Buffer.alloc(0) });
    if (res.statusCode === 201 && mount !== undefined) {
      await res.body.dump();
      return { mounted: true };
    }
    if (res.statusCode !== 202) throw await responseError(res, this.domain, `starting an upload to ${repo}`);
    await res.body.dump();
    return { mounted: false, location: this.#location(res, url) };
  }

  #location(res: Response, base: URL): URL {
    const loc = headerString(res.headers.location);
    if (!loc)
      throw new RegistryError('REGISTRY', this.domain, `registry ${this.domain} started an upload without a Location`);
    return new URL(loc, base);
  }

  /** Uploads a whole blob in one request (POST, then PUT with the content). */
  async uploadMonolithic(repo: string, digest: string, bytes: Buffer, signal?: AbortSignal): Promise<void> {
    const start = await this.startUpload(repo, undefined, signal);
    if (start.mounted) return;
    const url = new URL(start.location);
    url.searchParams.set('digest', digest);
    const res = await this.send('PUT', url, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) },
      body: bytes,
      scopes: [RegistryClient.pushScope(repo)],
      signal,
    });
    if (res.statusCode !== 201) throw await responseError(res, this.domain, `uploading blob ${digest} to ${repo}`);
    await res.body.dump();
  }

  /**
   * Uploads a stream in chunks of `chunkSize` bytes (PATCH with `Content-Range`, then PUT with
   * the digest computed on the way), so the digest need not be known in advance.
   */
  async uploadChunked(
    repo: string,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: { chunkSize: number; onProgress?: (sent: number) => void; signal?: AbortSignal },
  ): Promise<{ digest: string; size: number }> {
    const start = await this.startUpload(repo, undefined, options.signal);
    if (start.mounted) throw new RegistryError('REGISTRY', this.domain, 'unexpected mount');
    let location = start.location;
    const hash = createHash('sha256');
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingLength = 0;
    const scopes = [RegistryClient.pushScope(repo)];
    const flush = async (): Promise<void> => {
      if (pendingLength === 0) return;
      const chunk = Buffer.concat(pending, pendingLength);
      pending = [];
      pendingLength = 0;
      const res = await this.send('PATCH', location, {
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.byteLength),
          'content-range': `${offset}-${offset + chunk.byteLength - 1}`,
        },
        body: chunk,
        scopes,
        signal: options.signal,
      });
      if (res.statusCode !== 202) throw await responseError(res, this.domain, `uploading a chunk to ${repo}`);
      await res.body.dump();
      location = this.#location(res, location);
      offset += chunk.byteLength;
      options.onProgress?.(offset);
    };
    for await (const c of source) {
      const b = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      hash.update(b);
      pending.push(b);
      pendingLength += b.byteLength;
      if (pendingLength >= options.chunkSize) await flush();
    }
    await flush();
    const digest = `sha256:${hash.digest('hex')}`;
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.send('PUT', url, {
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
      scopes,
      signal: options.signal,
    });
    if (res.statusCode !== 201)
      throw await responseError(res, this.domain, `finishing the upload of ${digest} to ${repo}`);
    await res.body.dump();
    return { digest, size: offset };
  }
}
