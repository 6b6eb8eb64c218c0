/**
 * The transport under `RegistryClient` (`client.ts`): the ping, one HTTP exchange with retries, redirects
 * and authorisation (Basic, or a Bearer token from the registry's token service). See `client.ts`
 * for the flow of a request.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { RegistryError } from '../../errors.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { apiHost, isInsecure } from './hosts.js';
import { pickChallenge, retryAfterMs, specCode } from './responses.js';
import type { PingResult, RegistryHub } from './hub.js';
import type { RegistryAuth } from './types.js';

/** A registry's answer to one request. */
export type Response = Dispatcher.ResponseData;
type Headers = Record<string, string>;

interface SendInit {
  headers?: Headers;
  body?: Buffer;
  scopes: string[];
  signal?: AbortSignal | undefined;
}

const REDIRECTS = [301, 302, 303, 307, 308];

/** Thrown and caught inside the client when a network-level failure should be retried. */
function isAbort(e: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (e as Error)?.name === 'AbortError';
}

/** Requests to one registry with the credentials of one operation; `RegistryClient` speaks its API over it. */
export class RegistryTransport {
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
  protected async send(method: string, url: string | URL, init: SendInit): Promise<Response> {
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
  protected async url(path: string, signal?: AbortSignal): Promise<URL> {
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
}
