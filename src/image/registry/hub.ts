/**
 * What the registry clients of one engine share: the HTTP dispatchers (one that verifies TLS with
 * the system CAs plus `registryCAs`, one that does not, for insecure registries), the result of
 * each registry's ping (its base URL and auth challenge), and the bearer tokens, reused until
 * they expire.
 *
 * @module
 */
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import type { Challenge } from './challenge.js';
import type { RegistrySettings } from './types.js';

/** A registry's ping result: where its API is and what auth it asks for. */
export interface PingResult {
  /** `https://host[:port]` or `http://host[:port]`. */
  base: string;
  /** The challenge `/v2/` answered with; absent when it needs no auth. */
  challenge: Challenge | undefined;
}

interface CachedToken {
  token: string;
  expires: number;
}

/** Token lifetime assumed when the token service does not say (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;

/** Shared registry state of one engine. */
export class RegistryHub {
  /** The engine's registry settings. */
  readonly settings: RegistrySettings;
  readonly #pings = new Map<string, Promise<PingResult>>();
  readonly #tokens = new Map<string, CachedToken>();
  #secure: Dispatcher | undefined;
  #insecure: Dispatcher | undefined;

  /** Creates the hub; opens nothing until a request is made. */
  constructor(settings: RegistrySettings = {}) {
    this.settings = settings;
  }

  /** The dispatcher for requests: the injected one, else an undici Agent (TLS verified unless `insecure`). */
  dispatcher(insecure: boolean): Dispatcher {
    const injected = this.settings.registryDispatcher;
    if (injected !== undefined) return injected as unknown as Dispatcher;
    if (insecure) {
      this.#insecure ??= new Agent({ connect: { rejectUnauthorized: false } });
      return this.#insecure;
    }
    const cas = this.settings.registryCAs ?? [];
    this.#secure ??= new Agent(cas.length > 0 ? { connect: { ca: [...rootCertificates, ...cas] } } : {});
    return this.#secure;
  }

  /** The cached ping of `domain`, made with `ping` when there is none (a failed ping is not kept). */
  ping(domain: string, ping: () => Promise<PingResult>): Promise<PingResult> {
    let p = this.#pings.get(domain);
    if (p === undefined) {
      p = ping();
      this.#pings.set(domain, p);
      // The caller gets the failure through p; only the cache forgets it.
      p.catch(() => this.#pings.delete(domain));
    }
    return p;
  }

  /** Replaces the challenge known for `domain` (a registry may start asking for auth later). */
  setChallenge(domain: string, result: PingResult): void {
    this.#pings.set(domain, Promise.resolve(result));
  }

  /** A cached token for `key` that is still valid for at least a few seconds, or undefined. */
  token(key: string): string | undefined {
    const t = this.#tokens.get(key);
    if (t === undefined) return undefined;
    if (t.expires - Date.now() < 5_000) {
      this.#tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  /** Keeps a token; `expiresIn` seconds from `issuedAt` (default: now). */
  putToken(key: string, token: string, expiresIn: number | undefined, issuedAt?: string): void {
    const start =
      issuedAt !== undefined && !Number.isNaN(Date.parse(issuedAt))
        ? Math.min(Date.parse(issuedAt), Date.now())
        : Date.now();
    const seconds = expiresIn !== undefined && expiresIn > 0 ? expiresIn : DEFAULT_TOKEN_SECONDS;
    this.#tokens.set(key, { token, expires: start + seconds * 1000 });
  }

  /** Forgets a token (the registry refused it). */
  dropToken(key: string): void {
    this.#tokens.delete(key);
  }

  /** Closes the dispatchers this hub opened (not an injected one). */
  async close(): Promise<void> {
    const own = [this.#secure, this.#insecure].filter((d): d is Dispatcher => d !== undefined);
    this.#secure = this.#insecure = undefined;
    // close() rejects only for a dispatcher destroyed already: closed either way.
    await Promise.all(own.map((d) => d.close().catch(() => undefined)));
  }
}
