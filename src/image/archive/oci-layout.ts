/**
 * The OCI image layout (image-spec `image-layout.md`), as a tar:
 *
 * ```text
 * oci-layout             { "imageLayoutVersion": "1.0.0" }
 * index.json             an image index: one descriptor per tagged image (or per platform)
 * blobs/sha256/<hex>     manifests, nested indexes, configs and layers (plain, gzip or zstd tars)
 * ```
 *
 * A descriptor's name is its `io.containerd.image.name` annotation (what Docker and containerd
 * write), else `org.opencontainers.image.ref.name` when that is a whole reference; a bare tag
 * (`latest`, as skopeo writes) names no repository, so the image loads untagged. Every blob read
 * is checked against its descriptor's digest and size; layers are checked as they stream.
 *
 * A multi-platform index (nested, or several unnamed or same-named manifests with `platform` at
 * the top) loads the one image for the wanted platform (this machine's by default), and the plan
 * says which it took. A single image is loaded whatever its platform, as `docker load` does.
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import type { ImageReference } from '../reference.js';
import type { ArchiveReader } from './archive-index.js';
import { archiveReference, parseDocument, readVerified, type PlannedImage, type PlannedLayer } from './plan.js';
import { formatPlatform, platformMatches, type Platform } from './platform.js';

/** OCI and Docker media types berth reads and writes. */
export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** The annotation Docker and containerd put the full image name in. */
export const CONTAINERD_NAME = 'io.containerd.image.name';
/** The OCI annotation for a descriptor's name (a tag, or a whole reference). */
export const OCI_REF_NAME = 'org.opencontainers.image.ref.name';

const LAYER_TYPE =
  /^application\/vnd\.(?:oci\.image\.layer(?:\.nondistributable)?\.v1\.tar(?:\+gzip|\+zstd)?|docker\.image\.rootfs(?:\.foreign)?\.diff\.tar(?:\.gzip)?)$/;

const descriptor = z.looseObject({
  mediaType: z.string().optional(),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'expected a sha256 digest'),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).nullable().optional(),
  platform: z.looseObject({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional(),
});
type Descriptor = z.infer<typeof descriptor>;

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2).optional(),
  mediaType: z.string().optional(),
  manifests: z.array(descriptor),
});
const manifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptor,
  layers: z.array(descriptor),
});
const layoutSchema = z.looseObject({ imageLayoutVersion: z.string() });

const isIndex = (d: { mediaType?: string | undefined }): boolean =>
  d.mediaType === MEDIA_TYPES.ociIndex || d.mediaType === MEDIA_TYPES.dockerList;

/** Whether the archive is an OCI layout (`oci-layout` and `index.json`). */
export function isOciLayout(index: ArchiveReader): boolean {
  return index.has('oci-layout') && index.has('index.json');
}

async function blob(index: ArchiveReader, d: Descriptor, what: string): Promise<Buffer> {
  const file = index.resolve(`blobs/sha256/${d.digest.slice(7)}`);
  if (file.size !== d.size)
    throw new InvalidArgumentError(
      'archive',
      `${what} ${d.digest} has ${file.size} bytes, but its descriptor says ${d.size}`,
    );
  return (await readVerified(index, file, d.digest, 64 << 20)).bytes;
}

function nameOf(d: Descriptor): ImageReference | undefined {
  const a = d.annotations ?? {};
  const full = a[CONTAINERD_NAME];
  if (full !== undefined) return archiveReference(full, `index.json (${CONTAINERD_NAME})`);
  const ref = a[OCI_REF_NAME];
  if (ref !== undefined && /[/:]/.test(ref)) return archiveReference(ref, `index.json (${OCI_REF_NAME})`);
  return undefined;
}

/** Picks the descriptor for `want` among platform-specific ones. */
function choose(
  list: readonly Descriptor[],
  want: Platform,
  where: string,
): { chosen: Descriptor; available: string[] } {
  const available = list.filter((d) => d.platform !== undefined).map((d) => formatPlatform(d.platform as Platform));
  const chosen = list.find((d) => platformMatches(d.platform, want));
  if (chosen === undefined) {
    throw new InvalidArgumentError(
      'platform',
      `${where} has no image for ${formatPlatform(want)} (it has ${available.join(', ') || 'none'}); pass { platform } to pick one`,
    );
  }
  return { chosen, available };
}

/**
 * Reads the images of an OCI layout, one per top-level descriptor (one per platform group).
 *
 * @throws InvalidArgumentError (fields `archive`, `platform`); UnsafeLayerError.
 */
export async function readOciLayout(index: ArchiveReader, want: Platform): Promise<PlannedImage[]> {
  const layout = parseDocument(await index.read(index.resolve('oci-layout'), 1 << 16), layoutSchema, 'oci-layout');
  if (!layout.imageLayoutVersion.startsWith('1.'))
    throw new InvalidArgumentError('archive', `OCI layout version ${layout.imageLayoutVersion} is not supported`);
  const top = parseDocument(await index.read(index.resolve('index.json')), indexSchema, 'index.json');
  // Platform-specific manifests listed at the top level are one image: keep the one for `want`.
  const groups = new Map<string, Descriptor[]>();
  for (const d of top.manifests) {
    const key =
      !isIndex(d) && d.platform !== undefined ? `platform:${nameOf(d)?.toString() ?? ''}` : `single:${groups.size}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const out: PlannedImage[] = [];
  for (const group of groups.values()) {
    let d = group[0] as Descriptor;
    let platform: PlannedImage['platform'];
    if (group.length > 1) {
      const { chosen, available } = choose(group, want, 'index.json');
      d = chosen;
      platform = { chosen: formatPlatform(chosen.platform as Platform), available, manifest: chosen.digest };
    }
    const ref = nameOf(d);
    let manifestDesc = d;
    if (isIndex(d)) {
      const nested = parseDocument(await blob(index, d, 'index'), indexSchema, `index ${d.digest}`);
      const images = nested.manifests.filter((m) => !isIndex(m) && m.platform?.os !== 'unknown');
      if (images.length === 1) manifestDesc = images[0] as Descriptor;
      else {
        const { chosen, available } = choose(images, want, `index ${d.digest}`);
        manifestDesc = chosen;
        platform = { chosen: formatPlatform(chosen.platform as Platform), available, manifest: chosen.digest };
      }
    }
    out.push({
      ...(await readManifest(index, manifestDesc)),
      refs: ref === undefined ? [] : [ref],
      ...(platform === undefined ? {} : { platform }),
    });
  }
  return out;
}

async function readManifest(index: ArchiveReader, d: Descriptor): Promise<Omit<PlannedImage, 'refs'>> {
  if (
    d.mediaType !== undefined &&
    d.mediaType !== MEDIA_TYPES.ociManifest &&
    d.mediaType !== MEDIA_TYPES.dockerManifest
  ) {
    throw new InvalidArgumentError(
      'archive',
      `index.json lists ${d.digest} of type ${d.mediaType}, which is not an image manifest`,
    );
  }
  const m = parseDocument(await blob(index, d, 'manifest'), manifestSchema, `manifest ${d.digest}`);
  const config = await blob(index, m.config, 'config');
  const layers: PlannedLayer[] = m.layers.map((l) => {
    if (l.mediaType !== undefined && !LAYER_TYPE.test(l.mediaType)) {
      throw new InvalidArgumentError(
        'archive',
        `manifest ${d.digest} has a layer of type ${l.mediaType}, which berth cannot unpack`,
      );
    }
    const file = index.resolve(`blobs/sha256/${l.digest.slice(7)}`);
    if (file.size !== l.size)
      throw new InvalidArgumentError(
        'archive',
        `layer ${l.digest} has ${file.size} bytes, but its descriptor says ${l.size}`,
      );
    return { file, blobDigest: l.digest };
  });
  return { id: m.config.digest, config, layers };
}

/** One image as the OCI writer lays it out. */
export interface OciLayoutImage {
  /** The image id (the config's digest). */
  id: string;
  /** Size of the config in bytes. */
  configSize: number;
  /** The config's platform. */
  platform: Platform;
  /** References to name it with (one index entry each; one unnamed entry when none). */
  refs: ImageReference[];
  /** Layers: diffID (= the uncompressed blob's digest) and tar size, bottom first. */
  layers: Array<{ diffId: string; size: number }>;
}

/** The manifest of an image (layers uncompressed) and the `index.json` entries naming it. */
export function ociManifest(img: OciLayoutImage): { manifest: string; entries: object[] } {
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: img.id, size: img.configSize },
    layers: img.layers.map((l) => ({ mediaType: MEDIA_TYPES.ociLayer, digest: l.diffId, size: l.size })),
  });
  const base = {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(manifest),
    size: Buffer.byteLength(manifest),
  };
  const names = img.refs.length === 0 ? [undefined] : img.refs;
  const entries = names.map((r) => ({
    ...base,
    ...(r === undefined ? {} : { annotations: { [CONTAINERD_NAME]: r.toString(), [OCI_REF_NAME]: r.tag ?? 'latest' } }),
    platform: {
      architecture: img.platform.architecture,
      os: img.platform.os,
      ...(img.platform.variant ? { variant: img.platform.variant } : {}),
    },
  }));
  return { manifest, entries };
}
