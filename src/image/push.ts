/**
 * `docker push`: upload the layers a registry lacks, the config, then the manifest.
 *
 * ```text
 * per layer, N at once:
 *   known compressed forms (pulled as / pushed as)  ─HEAD─▶ present? ─▶ "Layer already exists"
 *   in another repository of the same registry      ─POST ?mount=&from=─▶ "Mounted from …"
 *   else: LayerStore.openTar (byte-exact) ─▶ gzip ─▶ chunked upload (PATCH …, PUT ?digest=) ─▶ "Pushed"
 *         and remember diffID → gzip digest, so the next push finds it with a HEAD
 * config ─▶ HEAD, else monolithic upload (POST, PUT)
 * manifest (Docker schema 2) ─▶ PUT /manifests/<tag> ─▶ repo digest recorded locally
 * ```
 *
 * The gzip stream of a layer is deterministic (zlib at a fixed level, no name or time in the
 * header), so a layer compressed again after its hint was lost gets the same digest.
 *
 * @module
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { ImageReference } from './reference.js';
import { mapLimit, shortId, type PullContext } from './pull.js';
import { BlobSources, type BlobSource } from './registry/blob-sources.js';
import { RegistryClient } from './registry/client.js';
import { dockerCredentials } from './registry/credentials.js';
import { MediaType, type Descriptor } from './registry/manifest.js';
import type { PushProgress, RegistryAuth } from './registry/types.js';

/** Default size of one PATCH of a chunked upload. */
export const DEFAULT_UPLOAD_CHUNK = 16 << 20;

/** Options of {@link pushImage}, already validated. */
export interface PushImageOptions {
  /** Credentials; absent: Docker config. */
  auth?: RegistryAuth | undefined;
}

/** The media type a pushed Docker schema 2 manifest gives a layer stored as `mediaType`. */
function dockerLayerType(mediaType: string): string {
  if (mediaType === MediaType.ociLayerGzip) return MediaType.dockerLayerGzip;
  if (mediaType === MediaType.ociLayer) return 'application/vnd.docker.image.rootfs.diff.tar';
  return mediaType;
}

/** A layer's archive, compressed with gzip. */
export function gzipLayer(tar: AsyncIterable<Buffer>): Readable {
  const gz = zlib.createGzip({ level: zlib.constants.Z_DEFAULT_COMPRESSION, chunkSize: 1 << 17 });
  // A failure destroys gz with its error, which the reader of gz gets.
  pipeline(Readable.from(tar, { objectMode: false }), gz).catch(() => undefined);
  return gz;
}

/**
 * Pushes the local image `ref` (a tag) to its registry; returns the manifest's digest and size.
 *
 * @throws NotFoundError (`IMAGE_NOT_FOUND`) when no local image has that tag; InvalidArgumentError
 *   (field `ref`) for a digest reference; RegistryError.
 */
export async function pushImage(
  ctx: PullContext,
  ref: ImageReference,
  options: PushImageOptions,
  emit: (p: PushProgress) => void,
  signal: AbortSignal,
): Promise<{ digest: string; size: number }> {
  if (ref.digest !== undefined || ref.tag === undefined)
    throw new InvalidArgumentError('ref', `cannot push '${ref.familiar}': push a tag, not a digest`);
  const id = ctx.records.refs()[ref.toString()];
  const record = id === undefined ? undefined : ctx.records.get(id);
  if (id === undefined || record === undefined) {
    throw new NotFoundError(
      'image',
      ref.familiar,
      `an image does not exist locally with the tag '${ref.familiar}'; tag an image with it first`,
    );
  }
  const configBytes = await ctx.blobs.read(id);
  const auth = options.auth ?? (await dockerCredentials(ref.domain));
  const client = new RegistryClient(ref.domain, ctx.hub, auth);
  const repo = ref.path;
  const sources = new BlobSources(ctx.root);
  emit({ id: ref.tag, status: `The push refers to repository [${ref.name}]` });
  const layers = record.layers;
  for (const d of [...layers].reverse()) emit({ id: shortId(d), status: 'Preparing' });
  const limit = ctx.hub.settings.maxConcurrentUploads ?? 5;
  for (const d of [...layers].reverse().slice(limit)) emit({ id: shortId(d), status: 'Waiting' });

  const pushLayer = async (diffId: string): Promise<Descriptor> => {
    const known = sources.get(diffId);
    const found = await existing(client, repo, known, signal);
    if (found !== undefined) {
      emit({ id: shortId(diffId), status: 'Layer already exists' });
      sources.add(diffId, found, ref.name);
      return { mediaType: dockerLayerType(found.mediaType), size: found.size, digest: found.digest };
    }
    for (const s of known) {
      for (const r of s.repos) {
        if (!r.startsWith(`${ref.domain}/`) || r === ref.name) continue;
        const from = r.slice(ref.domain.length + 1);
        const start = await client.startUpload(repo, { digest: s.digest, from }, signal);
        if (start.mounted) {
          emit({ id: shortId(diffId), status: `Mounted from ${from}` });
          sources.add(diffId, s, ref.name);
          return { mediaType: dockerLayerType(s.mediaType), size: s.size, digest: s.digest };
        }
      }
    }
    const total = ctx.layers.get(diffId)?.tarSize;
    emit({ id: shortId(diffId), status: 'Pushing', current: 0, ...(total === undefined ? {} : { total }) });
    const up = await client.uploadChunked(repo, gzipLayer(ctx.layers.openTar(diffId)), {
      chunkSize: ctx.hub.settings.uploadChunkSize ?? DEFAULT_UPLOAD_CHUNK,
      onProgress: (current) => emit({ id: shortId(diffId), status: 'Pushing', current }),
      signal,
    });
    emit({ id: shortId(diffId), status: 'Pushed' });
    sources.add(diffId, { digest: up.digest, size: up.size, mediaType: MediaType.dockerLayerGzip }, ref.name);
    return { mediaType: MediaType.dockerLayerGzip, size: up.size, digest: up.digest };
  };
  const descriptors = await mapLimit(layers, limit, pushLayer);

  if ((await client.hasBlob(repo, id, signal)) === undefined)
    await client.uploadMonolithic(repo, id, configBytes, signal);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, size: configBytes.byteLength, digest: id },
    layers: descriptors.map((d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest })),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
  const digest = await client.putManifest(repo, ref.tag, bytes, MediaType.dockerManifest, signal);
  await ctx.blobs.ingest(bytes);
  const tagged = await ctx.records.locked(() => {
    if (ctx.records.get(id) === undefined) return false;
    const refs = ctx.records.refs();
    refs[`${ref.name}@${digest}`] = id;
    ctx.records.setRefs(refs);
    return true;
  });
  emit({ id: ref.tag, status: `${ref.tag}: digest: ${digest} size: ${bytes.byteLength}` });
  if (tagged) await ctx.event('push', id, ref.familiar);
  return { digest, size: bytes.byteLength };
}

/** The first known compressed form of a layer that the repository already has. */
async function existing(
  client: RegistryClient,
  repo: string,
  known: BlobSource[],
  signal: AbortSignal,
): Promise<BlobSource | undefined> {
  const ordered = [...known].sort((a, b) => score(b, client.domain) - score(a, client.domain)).slice(0, 4);
  for (const s of ordered) {
    const size = await client.hasBlob(repo, s.digest, signal);
    if (size !== undefined) return { ...s, size: size || s.size };
  }
  return undefined;
}

function score(s: BlobSource, domain: string): number {
  return s.repos.some((r) => r.startsWith(`${domain}/`)) ? 2 : s.repos.length === 0 ? 1 : 0;
}
