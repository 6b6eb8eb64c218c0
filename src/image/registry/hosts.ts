/**
 * Where a registry named in a reference is reached, and how: Docker Hub's API host and aliases,
 * loopback detection, and the insecure-registry list (plain HTTP allowed).
 *
 * @module
 */
import { BlockList, isIP } from 'node:net';
import { DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN } from '../reference.js';

/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The key `docker login` stores Docker Hub's credentials under. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** The host (and port) the API of the registry `domain` lives on: Docker Hub's is `registry-1.docker.io`. */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : domain;
}

/** The keys a Docker config may hold the registry's credentials under, most specific first. */
export function credentialKeys(domain: string): string[] {
  if (domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN || domain === DOCKER_HUB_API_HOST) {
    return [
      DOCKER_HUB_AUTH_KEY,
      'index.docker.io',
      'docker.io',
      DOCKER_HUB_API_HOST,
      'https://index.docker.io/v1',
      'https://registry-1.docker.io',
    ];
  }
  return [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
}

/** The server URL a credential helper is asked about (what `docker login` stored). */
export function helperServerUrl(domain: string): string {
  return credentialKeys(domain)[0] as string;
}

/** Splits `host:port` / `[v6]:port` into the bare host. */
export function hostOnly(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const i = domain.lastIndexOf(':');
  return i === -1 || domain.indexOf(':') !== i ? domain : domain.slice(0, i);
}

/** Whether the registry is on this machine (`localhost`, `127.0.0.0/8`, `::1`). */
export function isLoopback(domain: string): boolean {
  const host = hostOnly(domain).toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Whether plain HTTP (and unverified TLS) is allowed for the registry: loopback registries, and
 * those listed in `insecure` by `host`, `host:port` or CIDR (`10.0.0.0/8`, for IP hosts), as
 * Docker's `insecure-registries`.
 */
export function isInsecure(domain: string, insecure: readonly string[] = []): boolean {
  if (isLoopback(domain)) return true;
  const host = hostOnly(domain);
  for (const entry of insecure) {
    if (entry === domain || entry === host) return true;
    const m = /^(.+)\/(\d+)$/.exec(entry);
    const family = isIP(host);
    if (m && family !== 0 && isIP(m[1] as string) === family) {
      const list = new BlockList();
      const type = family === 4 ? 'ipv4' : 'ipv6';
      list.addSubnet(m[1] as string, Number(m[2]), type);
      if (list.check(host, type)) return true;
    }
  }
  return false;
}
