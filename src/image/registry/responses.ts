/**
 * Reading a registry's responses: errors carrying the distribution spec's code, `Retry-After`,
 * headers, bounded bodies, and the authentication challenge to follow.
 *
 * @module
 */
import type { Dispatcher } from 'undici';
import { RegistryError } from '../../errors.js';
import type { Challenge } from './challenge.js';

type Response = Dispatcher.ResponseData;

/** Turns an unexpected response of registry `domain` into a RegistryError (consumes the body). */
export async function responseError(res: Response, domain: string, what: string): Promise<RegistryError> {
  // An unreadable body still leaves the status to report.
  const text = await res.body.text().catch(() => '');
  const spec = specCode(text);
  const detail = spec.registryCode ? ` (${spec.registryCode}${spec.message ? `: ${spec.message}` : ''})` : '';
  const status = res.statusCode;
  const details = { status, ...(spec.registryCode === undefined ? {} : { registryCode: spec.registryCode }) };
  if (status === 401 || status === 403) {
    return new RegistryError(
      'REGISTRY_AUTH',
      domain,
      `${what}: access denied by ${domain} (${status})${detail}; log in (auth option or docker login) or check the repository name`,
      details,
    );
  }
  if (status === 404)
    return new RegistryError(
      'IMAGE_NOT_FOUND',
      domain,
      `${what}: not found on ${domain}${detail}; check the name and tag`,
      details,
    );
  if (status >= 500 || status === 429)
    return new RegistryError(
      'REGISTRY_UNREACHABLE',
      domain,
      `${what}: ${domain} kept failing with ${status}${detail}; retry later`,
      details,
    );
  return new RegistryError('REGISTRY', domain, `${what}: ${domain} answered ${status}${detail}`, details);
}

/** The challenge to follow: Bearer when offered, else Basic. */
export function pickChallenge(all: Challenge[]): Challenge | undefined {
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}

/** The first value of a response header. */
export function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** `Retry-After` in milliseconds (seconds or an HTTP date), capped at 30 s. */
export function retryAfterMs(v: string | string[] | undefined): number | undefined {
  const s = headerString(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  const ms = Number.isFinite(n) ? n * 1000 : Date.parse(s) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 30_000) : undefined;
}

/** The first error of a distribution-spec error body: `{ errors: [{ code, message }] }`. */
export function specCode(text: string): { registryCode?: string; message?: string } {
  try {
    const e = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors?.[0];
    return { ...(e?.code ? { registryCode: e.code } : {}), ...(e?.message ? { message: e.message } : {}) };
  } catch {
    // Not a distribution-spec body (a proxy's HTML page …): no code in it.
    return {};
  }
}

/** A response body of at most `limit` bytes; beyond it the body is dropped and `tooBig()` thrown. */
export async function readLimited(body: Response['body'], limit: number, tooBig: () => Error): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.byteLength;
    if (n > limit) {
      body.destroy();
      throw tooBig();
    }
    parts.push(c);
  }
  return Buffer.concat(parts);
}
