/**
 * Manifests: Docker schema 2 and OCI image manifests, Docker manifest lists and OCI indexes, and
 * choosing a platform from a list as Docker does (os, architecture, then variant; `arm64` without
 * a variant matches `v8`).
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError, RegistryError } from '../../errors.js';
import { ociPlatform } from '../image-config.js';
import type { PullPlatform } from './types.js';

/** Media types berth reads and writes. */
export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeign: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
} as const;

/** What a pull accepts, in order of preference. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
] as const;

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'expected a sha256 digest');

const descriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

/** A content descriptor. */
export type Descriptor = z.infer<typeof descriptorSchema>;

const manifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});

/** An image manifest (Docker schema 2 or OCI). */
export type ImageManifest = z.infer<typeof manifestSchema>;

const platformSchema = z.looseObject({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
});

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema.extend({ platform: platformSchema.optional() })),
});

/** A manifest list or OCI index. */
export type ImageIndex = z.infer<typeof indexSchema>;

/** A parsed manifest: an image manifest or an index. */
export type ParsedManifest = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

/**
 * Parses the JSON of a document `registry` sent (`what` names it: "the manifest from …").
 *
 * @throws RegistryError (`REGISTRY`, `MANIFEST_INVALID`) when it is not valid JSON.
 */
export function parseRegistryJson(bytes: Buffer, registry: string, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new RegistryError(
      'REGISTRY',
      registry,
      `${what} is not valid JSON`,
      { registryCode: 'MANIFEST_INVALID' },
      { cause: e },
    );
  }
}

/**
 * Parses manifest bytes of `mediaType`.
 *
 * @throws RegistryError (`REGISTRY`, `MANIFEST_INVALID`) for schema 1, unknown types or bad JSON.
 */
export function parseManifest(bytes: Buffer, mediaType: string, registry: string): ParsedManifest {
  const json = parseRegistryJson(bytes, registry, `the manifest from ${registry}`);
  const declared = (json as { mediaType?: string } | null)?.mediaType;
  const type = mediaType || declared || '';
  const isIndex =
    type === MediaType.dockerList ||
    type === MediaType.ociIndex ||
    (!type && Array.isArray((json as { manifests?: unknown })?.manifests));
  if (
    (json as { schemaVersion?: number })?.schemaVersion === 1 ||
    type.startsWith('application/vnd.docker.distribution.manifest.v1')
  ) {
    throw new RegistryError(
      'REGISTRY',
      registry,
      `the image on ${registry} uses Docker manifest schema 1, which is deprecated and not supported; push it again with a recent client`,
      { registryCode: 'MANIFEST_INVALID' },
    );
  }
  if (isIndex) {
    const r = indexSchema.safeParse(json);
    if (!r.success) throw invalidManifest(registry, r.error);
    return { kind: 'index', index: r.data };
  }
  if (type && type !== MediaType.dockerManifest && type !== MediaType.ociManifest) {
    throw new RegistryError('REGISTRY', registry, `${registry} sent a manifest of unsupported type '${type}'`, {
      registryCode: 'MANIFEST_INVALID',
    });
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) throw invalidManifest(registry, r.error);
  return { kind: 'manifest', manifest: r.data };
}

function invalidManifest(registry: string, cause: unknown): RegistryError {
  return new RegistryError(
    'REGISTRY',
    registry,
    `the manifest from ${registry} is malformed`,
    { registryCode: 'MANIFEST_INVALID' },
    { cause },
  );
}

/** The default platform: this machine's, as OCI names it. */
export function hostPlatform(): Required<Pick<PullPlatform, 'os' | 'architecture'>> & Pick<PullPlatform, 'variant'> {
  return { os: 'linux', ...ociPlatform() };
}

/**
 * Parses a platform given as `os/arch[/variant]` or an object; fills `os` with `linux`.
 *
 * @throws InvalidArgumentError (field `platform`).
 */
export function normalizePlatform(p: PullPlatform | string | undefined): PullPlatform & { os: string } {
  if (p === undefined) return hostPlatform();
  if (typeof p === 'string') {
    const parts = p.split('/');
    if (parts.length < 1 || parts.length > 3 || parts.some((x) => !/^[a-z0-9_.-]+$/i.test(x))) {
      throw new InvalidArgumentError('platform', `'${p}' is not os/architecture[/variant], e.g. linux/arm64`);
    }
    if (parts.length === 1) return { os: 'linux', ...ociPlatform(parts[0] as string) };
    const [os, arch, variant] = parts as [string, string, string?];
    return { os: os.toLowerCase(), architecture: normalizeArch(arch), ...(variant === undefined ? {} : { variant }) };
  }
  return { ...p, os: p.os ?? 'linux', architecture: normalizeArch(p.architecture) };
}

function normalizeArch(a: string): string {
  const lower = a.toLowerCase();
  return (
    (
      { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' } as Record<
        string,
        string
      >
    )[lower] ?? lower
  );
}

/** `linux/arm64/v8` */
export function platformString(p: { os?: string; architecture: string; variant?: string | undefined }): string {
  return [p.os ?? 'linux', p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * The index entry for `want`, as containerd's platform matcher chooses: same os and architecture;
 * with a variant wanted, the same variant (arm64 `v8` also matches no variant); without, the entry
 * with no variant or the first one. Entries that are attestations (`unknown/unknown`) never match.
 *
 * @throws RegistryError (`IMAGE_NOT_FOUND`) naming the platforms the index has.
 */
export function selectPlatform(
  index: ImageIndex,
  want: PullPlatform & { os: string },
  registry: string,
  ref: string,
): Descriptor {
  const candidates = index.manifests.filter(
    (m) => m.platform !== undefined && m.platform.os === want.os && m.platform.architecture === want.architecture,
  );
  const arm64Default = (v: string | undefined): string | undefined =>
    want.architecture === 'arm64' && v === undefined ? 'v8' : v;
  const match =
    want.variant === undefined
      ? (candidates.find((m) => m.platform?.variant === undefined) ?? candidates[0])
      : candidates.find((m) => arm64Default(m.platform?.variant) === arm64Default(want.variant));
  if (match === undefined) {
    const have = index.manifests
      .filter((m) => m.platform && m.platform.os !== 'unknown')
      .map((m) => platformString(m.platform as PullPlatform));
    throw new RegistryError(
      'IMAGE_NOT_FOUND',
      registry,
      `${ref} has no image for ${platformString(want)} (it has: ${have.join(', ') || 'none'}); choose one with the platform option`,
      { registryCode: 'MANIFEST_UNKNOWN' },
    );
  }
  return match;
}

/** How a layer's media type says it is compressed; undefined for types berth does not pull. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | undefined {
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  if (mediaType.endsWith('gzip')) return 'gzip';
  if (
    mediaType === MediaType.ociLayer ||
    mediaType.endsWith('.tar') ||
    mediaType === 'application/vnd.docker.image.rootfs.diff.tar'
  )
    return 'none';
  return undefined;
}
