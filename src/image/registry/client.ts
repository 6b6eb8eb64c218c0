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
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { RegistryError } from '../../errors.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { apiHost, isInsecure } from './hosts.js';
import { headerString, pickChallenge, readLimited, responseError, retryAfterMs, specCode } from './responses.js';
import type { PingResult, RegistryHub } from './hub.js';
import type { RegistryAuth } from './types.js';

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

type Response = Dispatcher.ResponseData;
type Headers = Record<string, string>;

interface SendInit {
  headers?: Headers;
  body?: Buffer;
  scopes: string[];
  signal?: AbortSignal | undefined;
}

const MANIFEST_LIMIT = 4 << 20;
const REDIRECTS = [301, 302, 303, 307, 308];

/** Thrown and caught inside the client when a network-level failure should be retried. */
function isAbort(e: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (e as Error)?.name === 'AbortError';
}

/** A client of one registry, with the credentials of one operation. */
export class RegistryClient {
  /** The registry as referenced (`docker.io`, `localhost:5000`). */
  readonly domain: string;
  readonly #hub: RegistryHub;
  readonly #auth: RegistryAuth | undefined;
  readonly #insecure: boolean;
  readonly #retries: number;
  readonly #delay: number;
  readonly #credId: string;

  /**
   * @param domain - The registry as a reference names it.
   * @param hub - The engine's shared registry state.
   * @param auth - The credentials to use, if any (already resolved from options or Docker config).
   */
  constructor(domain: string, hub: RegistryHub, auth?: RegistryAuth) {
    this.domain = domain;
    this.#hub = hub;
    this.#auth = auth;
    this.#insecure = isInsecure(domain, hub.settings.insecureRegistries);
    this.#retries = hub.settings.registryRetries ?? 3;
    this.#delay = hub.settings.registryRetryDelay ?? 250;
    this.#credId =
      auth === undefined ? '-' : createHash('sha256').update(JSON.stringify(auth)).digest('hex').slice(0, 16);
  }

  /** The pull scope of `repo`. */
  static pullScope(repo: string): string {
    return `repository:${repo}:pull`;
  }

  /** The push scope of `repo` (push needs pull too). */
  static pushScope(repo: string): string {
    return `repository:${repo}:pull,push`;
  }

  // ── requests ──────────────────────────────────────────────────────────────────────────────

  /** Pings the registry (cached per engine): its base URL and auth challenge. */
  async ping(signal?: AbortSignal): Promise<PingResult> {
    return this.#hub.ping(this.domain, async () => {
      const host = apiHost(this.domain);
      try {
        return await this.#pingAt(`https://${host}`, signal, this.#insecure ? 0 : this.#retries);
      } catch (e) {
        if (!this.#insecure || isAbort(e, signal) || (e instanceof RegistryError && e.status !== undefined)) throw e;
        return this.#pingAt(`http://${host}`, signal, this.#retries);
      }
    });
  }

  async #pingAt(base: string, signal: AbortSignal | undefined, retries: number): Promise<PingResult> {
    const res = await this.#raw('GET', `${base}/v2/`, {}, undefined, signal, retries);
    await res.body.dump();
    if (res.statusCode === 401) {
      const ch = pickChallenge(parseChallenges(res.headers['www-authenticate']));
      return { base, challenge: ch };
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return { base, challenge: undefined };
    throw new RegistryError(
      res.statusCode >= 500 || res.statusCode === 429 ? 'REGISTRY_UNREACHABLE' : 'REGISTRY',
      this.domain,
      `registry ${this.domain} answered ${res.statusCode} to /v2/; is it an OCI distribution registry?`,
      { status: res.statusCode },
    );
  }

  /** One HTTP exchange with retries on dropped connections, 5xx and 429. */
  async #raw(
    method: string,
    url: string | URL,
    headers: Headers,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
    retries = this.#retries,
  ): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await request(url, {
          method: method as Dispatcher.HttpMethod,
          headers,
          body: body ?? null,
          dispatcher: this.#hub.dispatcher(this.#insecure),
          signal: signal ?? null,
          headersTimeout: 60_000,
          bodyTimeout: 120_000,
        });
      } catch (e) {
        if (isAbort(e, signal)) throw signal?.reason ?? e;
        if (attempt < retries) {
          await sleep(this.#delay * 2 ** attempt, undefined, { signal });
          continue;
        }
        const why = (e as Error)?.message ?? String(e);
        throw new RegistryError(
          'REGISTRY_UNREACHABLE',
          this.domain,
          `cannot reach registry ${this.domain} (${String(url)}): ${why}; check that it is running and reachable`,
          {},
          { cause: e },
        );
      }
      if ((res.statusCode >= 500 || res.statusCode === 429) && attempt < retries) {
        const after = retryAfterMs(res.headers['retry-after']);
        await res.body.dump();
        await sleep(after ?? this.#delay * 2 ** attempt, undefined, { signal });
        continue;
      }
      return res;
    }
  }

  /** Sends an authorised request: follows redirects, re-authenticates once on 401, retries. */
  async #send(method: string, url: string | URL, init: SendInit): Promise<Response> {
    let target = new URL(url);
    let sameHost = true;
    let reauthed = false;
    for (let redirects = 0; ;) {
      const headers: Headers = { ...init.headers };
      if (sameHost) {
        const a = await this.#authorization(init.scopes, init.signal);
        if (a !== undefined) headers.authorization = a;
      }
      const res = await this.#raw(method, target, headers, init.body, init.signal);
      const location = res.headers.location;
      if (
        REDIRECTS.includes(res.statusCode) &&
        typeof location === 'string' &&
        (method === 'GET' || method === 'HEAD') &&
        redirects < 10
      ) {
        await res.body.dump();
        const next = new URL(location, target);
        if (next.host !== target.host) sameHost = false;
        target = next;
        redirects++;
        continue;
      }
      if (res.statusCode === 401 && sameHost && !reauthed) {
        const challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']));
        reauthed = true;
        if (challenge !== undefined && (this.#auth !== undefined || challenge.scheme === 'bearer')) {
          await res.body.dump();
          const ping = await this.ping(init.signal);
          this.#hub.setChallenge(this.domain, { base: ping.base, challenge });
          this.#hub.dropToken(this.#tokenKey(init.scopes));
          const extra = challenge.params.scope;
          if (extra !== undefined) init = { ...init, scopes: [...new Set([...init.scopes, ...extra.split(' ')])] };
          continue;
        }
      }
      return res;
    }
  }

  /** The URL of `path` under the registry's API base. */
  async #url(path: string, signal?: AbortSignal): Promise<URL> {
    const { base } = await this.ping(signal);
    return new URL(`${base}/v2/${path}`);
  }

  // ── auth ──────────────────────────────────────────────────────────────────────────────────

  #tokenKey(scopes: string[]): string {
    return `${this.domain}\0${this.#credId}\0${[...scopes].sort().join(' ')}`;
  }

  async #authorization(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const { challenge } = await this.ping(signal);
    const auth = this.#auth;
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') {
      if (auth === undefined || !('username' in auth)) return undefined;
      return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (auth !== undefined && 'registrytoken' in auth) return `Bearer ${auth.registrytoken}`;
    const key = this.#tokenKey(scopes);
    const cached = this.#hub.token(key);
    if (cached !== undefined) return `Bearer ${cached}`;
    const t = await this.#fetchToken(challenge, scopes, signal);
    this.#hub.putToken(key, t.token, t.expiresIn, t.issuedAt);
    return `Bearer ${t.token}`;
  }

  async #fetchToken(
    challenge: Challenge,
    scopes: string[],
    signal?: AbortSignal,
  ): Promise<{ token: string; expiresIn?: number; issuedAt?: string }> {
    const realm = challenge.params.realm;
    if (!realm)
      throw new RegistryError(
        'REGISTRY_AUTH',
        this.domain,
        `registry ${this.domain} asks for a bearer token but names no token service (realm)`,
      );
    const service = challenge.params.service;
    const auth = this.#auth;
    let res: Response;
    if (auth !== undefined && 'identitytoken' in auth) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: auth.identitytoken,
        client_id: 'berth',
        access_type: 'offline',
      });
      if (service) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      res = await this.#raw(
        'POST',
        realm,
        { 'content-type': 'application/x-www-form-urlencoded' },
        Buffer.from(form.toString()),
        signal,
      );
    } else {
      const url = new URL(realm);
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Headers = {};
      if (auth !== undefined && 'username' in auth) {
        url.searchParams.set('account', auth.username);
        url.searchParams.set('client_id', 'berth');
        url.searchParams.set('offline_token', 'true');
        headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
      }
      res = await this.#raw('GET', url, headers, undefined, signal);
    }
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new RegistryError(
        'REGISTRY_AUTH',
        this.domain,
        `the token service of ${this.domain} refused ${auth === undefined ? 'anonymous access' : 'the credentials'} ` +
          `(${res.statusCode}); log in or check the credentials`,
        { status: res.statusCode, ...specCode(text) },
      );
    }
    if (res.statusCode !== 200) {
      throw new RegistryError(
        'REGISTRY',
        this.domain,
        `the token service of ${this.domain} answered ${res.statusCode}: ${text.slice(0, 200)}`,
        { status: res.statusCode },
      );
    }
    let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (e) {
      throw new RegistryError(
        'REGISTRY',
        this.domain,
        `the token service of ${this.domain} sent invalid JSON`,
        {},
        { cause: e },
      );
    }
    const token = body.token ?? body.access_token;
    if (!token)
      throw new RegistryError('REGISTRY_AUTH', this.domain, `the token service of ${this.domain} sent no token`);
    return {
      token,
      ...(body.expires_in === undefined ? {} : { expiresIn: body.expires_in }),
      ...(body.issued_at === undefined ? {} : { issuedAt: body.issued_at }),
    };
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
    const url = await this.#url(`${repo}/manifests/${reference}`, signal);
    const res = await this.#send('GET', url, {
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
    const url = await this.#url(`${repo}/manifests/${reference}`, signal);
    const res = await this.#send('PUT', url, {
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
    const url = await this.#url(`${repo}/blobs/${digest}`, options.signal);
    const res = await this.#send('GET', url, { scopes: [RegistryClient.pullScope(repo)], signal: options.signal });
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
    const url = await this.#url(`${repo}/blobs/${digest}`, signal);
    const res = await this.#send('HEAD', url, { scopes: [RegistryClient.pushScope(repo)], signal });
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
    const url = await this.#url(`${repo}/blobs/uploads/`, signal);
    const scopes = [RegistryClient.pushScope(repo)];
    if (mount !== undefined) {
      url.searchParams.set('mount', mount.digest);
      url.searchParams.set('from', mount.from);
      scopes.push(RegistryClient.pullScope(mount.from));
    }
    const res = await this.#send('POST', url, { scopes, signal, body: Buffer.alloc(0) });
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
    const res = await this.#send('PUT', url, {
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
      const res = await this.#send('PATCH', location, {
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
    const res = await this.#send('PUT', url, {
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
