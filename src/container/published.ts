/**
 * Where a container's published ports are reached from the host: the address of a binding
 * (`0.0.0.0` and `::` mean every address, so the loopback one is given) and its URL. What
 * `c.host()` and `c.url(port)` answer, from the container's network settings.
 *
 * @module
 */
import { z } from 'zod';
import { NotFoundError } from '../errors.js';
import { parseOptions } from './options.js';
import type { NetworkSettings } from './info.js';

/** One published port, as {@link NetworkSettings} lists it. */
export type PublishedPort = NetworkSettings['ports'][number];

/** Options of `Container.url`. */
export interface PublishedUrlOptions {
  /** The URL's scheme. Default `http`. */
  protocol?: 'http' | 'https';
  /** The path (with or without its leading `/`; may carry a query). Default `/`. */
  path?: string;
}

/** Schema of a container port number. */
export const containerPortSchema = z.number().int().min(1).max(65535);

/** Schema of the arguments of `c.host(containerPort?, protocol)`. */
export const hostArgsSchema = z.strictObject({
  containerPort: containerPortSchema.optional(),
  protocol: z.enum(['tcp', 'udp']),
});

/** Schema of {@link PublishedUrlOptions}. */
export const publishedUrlOptionsSchema = z.strictObject({
  protocol: z.enum(['http', 'https']).optional(),
  path: z.string().optional(),
});

/** What {@link publishedPorts} reads from the container manager. */
export interface PublishedSource {
  /** The record of container `ref`. */
  get(ref: string): Promise<{ id: string; name: string }>;
  /** Its network settings, with its published ports. */
  networkSettings(id: string): Promise<NetworkSettings>;
}

/** The published ports of container `ref`, and how messages name it. */
export async function publishedPorts(
  svc: PublishedSource,
  ref: string,
): Promise<[ports: PublishedPort[], label: string]> {
  const rec = await svc.get(ref);
  return [(await svc.networkSettings(rec.id)).ports, rec.name || rec.id.slice(0, 12)];
}

/** The address a binding on `hostIp` is reached on: loopback for a wildcard (or empty) address. */
export function reachableAddress(hostIp: string): string {
  if (hostIp === '' || hostIp === '0.0.0.0') return '127.0.0.1';
  if (hostIp === '::') return '::1';
  return hostIp;
}

/**
 * The binding of `containerPort`/`protocol` among `ports` (the first, when it is published on
 * several addresses).
 *
 * @throws NotFoundError (`NOT_FOUND`) naming the port when it is not published.
 */
export function findPublished(
  ports: readonly PublishedPort[],
  containerPort: number,
  protocol: 'tcp' | 'udp',
  label: string,
): PublishedPort {
  const p = ports.find((b) => b.containerPort === containerPort && b.protocol === protocol);
  if (p === undefined) {
    const published = ports.map((b) => `${b.containerPort}/${b.protocol}`).join(', ') || 'none';
    throw new NotFoundError(
      'other',
      `${containerPort}/${protocol}`,
      `port ${containerPort}/${protocol} of container ${label} is not published (published: ${published}); ` +
        `create it with ports: ['${containerPort}'] (or the container is not running)`,
    );
  }
  return p;
}

/**
 * The host address the container's published ports are reached on: that of `containerPort`'s
 * binding, or of the first published port when none is named.
 *
 * @throws NotFoundError (`NOT_FOUND`) when that port (or, unnamed, any port) is not published.
 */
export function publishedHost(
  ports: readonly PublishedPort[],
  label: string,
  containerPort?: number,
  protocol: 'tcp' | 'udp' = 'tcp',
): string {
  if (containerPort !== undefined) return reachableAddress(findPublished(ports, containerPort, protocol, label).hostIp);
  const first = ports[0];
  if (first === undefined)
    throw new NotFoundError(
      'other',
      'ports',
      `container ${label} has no published port (create it with ports, or it is not running)`,
    );
  return reachableAddress(first.hostIp);
}

/** The URL of the published TCP port `containerPort`: `http://127.0.0.1:<host port>/` by default. */
export function publishedUrl(
  ports: readonly PublishedPort[],
  label: string,
  containerPort: number,
  options: PublishedUrlOptions = {},
): string {
  const p = findPublished(ports, containerPort, 'tcp', label);
  const address = reachableAddress(p.hostIp);
  const host = address.includes(':') ? `[${address}]` : address;
  const path = options.path ?? '/';
  return `${options.protocol ?? 'http'}://${host}:${p.hostPort}${path.startsWith('/') ? path : `/${path}`}`;
}

/** `container.host()`: validates and answers from the container's published ports. */
export async function hostOf(
  svc: PublishedSource,
  ref: string,
  containerPort?: number,
  protocol: 'tcp' | 'udp' = 'tcp',
): Promise<string> {
  const a = parseOptions(hostArgsSchema, { containerPort, protocol });
  const [ports, label] = await publishedPorts(svc, ref);
  return publishedHost(ports, label, a.containerPort, a.protocol);
}

/** `container.url()`: validates and answers from the container's published ports. */
export async function urlOf(
  svc: PublishedSource,
  ref: string,
  containerPort: number,
  options: PublishedUrlOptions = {},
): Promise<string> {
  const port = parseOptions(containerPortSchema, containerPort, 'containerPort');
  const o = parseOptions(publishedUrlOptionsSchema, options) as PublishedUrlOptions;
  return publishedUrl(...(await publishedPorts(svc, ref)), port, o);
}
