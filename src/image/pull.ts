/**
 * `docker pull`: fetch a manifest (choosing a platform from an index), the config, then every
 * missing layer, unpacking each one while it downloads.
 *
 * ```text
 * manifest (tag|digest) ─▶ index? ─▶ select platform ─▶ manifest ─▶ config blob (verified, stored)
 *   └▶ per layer, N at once, under a per-diffID lock shared by every process on the root:
 *        stored? ─▶ "Already exists"
 *        GET blob ─▶ sha256 check ─▶ [zstd decode] ─▶ LayerStore.stage (gunzip, diffID check, unpack)
 *                 ─▶ commit (store lock)                  one pass, no temp file, no second read
 *   └▶ under the store lock: every layer still there ─▶ image record, tag, repo digest
 * ```
 *
 * A dropped connection or a registry failure while a layer streams restarts that layer (the
 * partial unpack is discarded), up to {@link LAYER_ATTEMPTS} times.
 *
 * @module
 */
import { join } from 'node:path';
import { Decompress } from 'fzstd';
import { attachCleanupErrors, BerthError, InvalidArgumentError, RegistryError } from '../errors.js';
import { withLock } from '../state/lock.js';
import type { BlobStore } from './blob-store.js';
import { digestHex } from './digest.js';
import { ociImageConfigSchema, type OciImageConfig } from './image-config.js';
import type { ImageRecords, ImageRecord } from './image-records.js';
import type { LayerStore } from './layer-store.js';
import type { ImageReference } from './reference.js';
import { BlobSources } from './registry/blob-sources.js';
import { RegistryClient } from './registry/client.js';
import { dockerCredentials } from './registry/credentials.js';
import type { RegistryHub } from './registry/hub.js';
import {
  MANIFEST_ACCEPT,
  layerCompression,
  normalizePlatform,
  parseManifest,
  parseRegistryJson,
  selectPlatform,
  type Descriptor,
} from './registry/manifest.js';
import type { PullPlatform, PullProgress, RegistryAuth } from './registry/types.js';

/** How many times one layer is tried when its download breaks. */
export const LAYER_ATTEMPTS = 3;

/** What a pull needs from the image service. */
export interface PullContext {
  /** The engine root. */
  root: string;
  /** The content store (configs, manifests). */
  blobs: BlobStore;
  /** The layer store. */
  layers: LayerStore;
  /** Image records and references. */
  records: ImageRecords;
  /** Shared registry state. */
  hub: RegistryHub;
  /** Appends an image event. */
  event(action: string, id: string, name: string): Promise<void>;
}

/** Options of {@link pullImage}, already validated. */
export interface PullImageOptions {
  /** The platform to choose from an index. */
  platform?: PullPlatform | string | undefined;
  /** Credentials; absent: Docker config. */
  auth?: RegistryAuth | undefined;
}

/**
 * Runs `fn` over `items`, at most `limit` at once. The first failure stops new work; once the
 * work under way settles it is thrown, with the failures of that work attached (never dropped).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const failures: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length && failures.length === 0) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T, i);
      } catch (e) {
        failures.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failures.length) throw attachCleanupErrors(failures[0], failures.slice(1));
  return out;
}

/** The short id Docker prints for a layer: 12 hex digits of its compressed digest. */
export function shortId(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
}

/**
 * Pulls `ref` into the store and returns the image id.
 *
 * @throws RegistryError (`IMAGE_NOT_FOUND`, `REGISTRY_AUTH`, `REGISTRY_UNREACHABLE`, `REGISTRY`);
 *   UnsafeLayerError; InvalidArgumentError (field `layer`) for an unsupported or corrupt layer.
 */
export async function pullImage(
  ctx: PullContext,
  ref: ImageReference,
  options: PullImageOptions,
  emit: (p: PullProgress) => void,
  signal: AbortSignal,
): Promise<string> {
  const platform = normalizePlatform(options.platform);
  const auth = options.auth ?? (await dockerCredentials(ref.domain));
  const client = new RegistryClient(ref.domain, ctx.hub, auth);
  const repo = ref.path;
  const label = ref.digest ?? ref.tag ?? 'latest';
  emit({ id: label, status: `Pulling from ${ref.familiarName}` });

  // Manifest, through an index when there is one.
  const top = await client.getManifest(repo, label, MANIFEST_ACCEPT, signal);
  let parsed = parseManifest(top.bytes, top.mediaType, ref.domain);
  let manifestBytes = top.bytes;
  if (parsed.kind === 'index') {
    const chosen = selectPlatform(parsed.index, platform, ref.domain, ref.familiar);
    const m = await client.getManifest(repo, chosen.digest, MANIFEST_ACCEPT, signal);
    parsed = parseManifest(m.bytes, m.mediaType, ref.domain);
    manifestBytes = m.bytes;
    if (parsed.kind !== 'manifest')
      throw new RegistryError('REGISTRY', ref.domain, `${ref.familiar}: an index entry is itself an index`, {
        registryCode: 'MANIFEST_INVALID',
      });
  }
  const manifest = parsed.manifest;

  // Config: the image id.
  const id = manifest.config.digest;
  let configBytes: Buffer;
  if (await ctx.blobs.has(id)) configBytes = await ctx.blobs.read(id);
  else configBytes = await client.fetchBlob(repo, id, { expectedSize: manifest.config.size, signal });
  const config = parseConfig(configBytes, ref);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new RegistryError(
      'REGISTRY',
      ref.domain,
      `${ref.familiar}: the manifest lists ${manifest.layers.length} layers but the config ${diffIds.length}`,
      { registryCode: 'MANIFEST_INVALID' },
    );
  }
  if (config.os !== undefined && config.os !== 'linux') {
    throw new InvalidArgumentError('platform', `${ref.familiar} is a ${config.os} image; berth runs linux images`);
  }
  await ctx.blobs.ingest(configBytes, { expectedDigest: id });
  await ctx.blobs.ingest(manifestBytes);
  if (manifestBytes !== top.bytes) await ctx.blobs.ingest(top.bytes);

  // Layers.
  const sources = new BlobSources(ctx.root);
  const repoName = ref.name;
  const work = manifest.layers.map((desc, i) => ({ desc, diffId: diffIds[i] as string }));
  for (const { desc, diffId } of work) {
    emit({ id: shortId(desc.digest), status: ctx.layers.has(diffId) ? 'Already exists' : 'Pulling fs layer' });
  }
  const missing = work.filter((w) => !ctx.layers.has(w.diffId));
  for (const { desc } of missing.slice(ctx.hub.settings.maxConcurrentDownloads ?? 3))
    emit({ id: shortId(desc.digest), status: 'Waiting' });
  const fetchLayer = async ({ desc, diffId }: { desc: Descriptor; diffId: string }): Promise<void> => {
    await withLock(
      join(ctx.root, 'layers', 'locks', `${digestHex(diffId, 'diffId')}.lock`),
      async () => {
        if (ctx.layers.has(diffId)) {
          emit({ id: shortId(desc.digest), status: 'Already exists' });
          return;
        }
        await pullLayer(ctx, client, repo, desc, diffId, emit, signal);
        sources.add(diffId, { digest: desc.digest, size: desc.size, mediaType: desc.mediaType }, repoName);
      },
      { signal },
    );
  };
  for (let round = 0; ; round++) {
    await mapLimit(missing, ctx.hub.settings.maxConcurrentDownloads ?? 3, fetchLayer);
    for (const { desc, diffId } of work)
      if (ctx.layers.has(diffId))
        sources.add(diffId, { digest: desc.digest, size: desc.size, mediaType: desc.mediaType }, repoName);

    // Record the image; a layer removed meanwhile (by a prune in another process) is fetched again.
    const result = await ctx.records.locked(async () => {
      if (work.some((w) => !ctx.layers.has(w.diffId))) return undefined;
      if (!(await ctx.blobs.has(id))) await ctx.blobs.ingest(configBytes, { expectedDigest: id });
      const size = work.reduce((n, w) => n + (ctx.layers.get(w.diffId)?.size ?? 0), 0);
      const existed = ctx.records.get(id) !== undefined;
      const record: ImageRecord = {
        id,
        layers: [...diffIds],
        size,
        created: config.created ?? new Date().toISOString(),
      };
      ctx.records.put(record);
      const refs = ctx.records.refs();
      const tagKey = ref.digest === undefined ? ref.toString() : undefined;
      const upToDate = existed && (tagKey === undefined || refs[tagKey] === id);
      if (tagKey !== undefined) refs[tagKey] = id;
      refs[`${ref.name}@${top.digest}`] = id;
      ctx.records.setRefs(refs);
      return { upToDate };
    });
    if (result !== undefined) {
      emit({ id: ref.familiar, status: `Digest: ${top.digest}` });
      emit({
        id: ref.familiar,
        status: result.upToDate
          ? `Status: Image is up to date for ${ref.familiar}`
          : `Status: Downloaded newer image for ${ref.familiar}`,
      });
      await ctx.event('pull', id, ref.familiar);
      return id;
    }
    if (round >= 2)
      throw new BerthError('CONFLICT', `the layers of ${ref.familiar} keep being removed while it is pulled; retry`);
  }
}

function parseConfig(bytes: Buffer, ref: ImageReference): OciImageConfig {
  const json = parseRegistryJson(bytes, ref.domain, `the config of ${ref.familiar}`);
  const r = ociImageConfigSchema.safeParse(json);
  if (!r.success)
    throw new RegistryError(
      'REGISTRY',
      ref.domain,
      `the config of ${ref.familiar} is malformed`,
      { registryCode: 'MANIFEST_INVALID' },
      { cause: r.error },
    );
  return r.data as unknown as OciImageConfig;
}

/** Downloads and unpacks one layer in one pass, retrying when the transfer breaks. */
async function pullLayer(
  ctx: PullContext,
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  diffId: string,
  emit: (p: PullProgress) => void,
  signal: AbortSignal,
): Promise<void> {
  const id = shortId(desc.digest);
  if (layerCompression(desc.mediaType) === undefined) {
    throw new InvalidArgumentError(
      'layer',
      `layer ${desc.digest} has media type '${desc.mediaType}', which berth cannot unpack (use tar, tar+gzip or tar+zstd)`,
    );
  }
  if (desc.urls !== undefined && desc.urls.length > 0 && desc.mediaType.includes('foreign')) {
    throw new InvalidArgumentError(
      'layer',
      `layer ${desc.digest} is a foreign layer (downloaded from ${desc.urls[0]}), which berth does not fetch`,
    );
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const dl = await client.openBlob(repo, desc.digest, { expectedSize: desc.size, signal });
      const total = dl.size ?? desc.size;
      emit({ id, status: 'Downloading', current: 0, total });
      const counted = counting(
        dl.body,
        total,
        (current) => emit({ id, status: 'Downloading', current, total }),
        client.domain,
      );
      const staged = await ctx.layers.stage(decodeZstd(counted), { expectedDiffId: diffId, signal });
      try {
        emit({ id, status: 'Verifying Checksum' });
        emit({ id, status: 'Download complete' });
        emit({ id, status: 'Extracting' });
        await ctx.records.locked(() => ctx.layers.commit(staged));
      } finally {
        await staged.discard();
      }
      emit({ id, status: 'Pull complete' });
      return;
    } catch (e) {
      if (
        signal.aborted ||
        attempt >= LAYER_ATTEMPTS ||
        !(e instanceof RegistryError) ||
        e.code !== 'REGISTRY_UNREACHABLE'
      )
        throw e;
      emit({ id, status: `Retrying in ${attempt} second${attempt > 1 ? 's' : ''}` });
      await new Promise((r) => setTimeout(r, Math.min(attempt * 200, 1000)));
    }
  }
}

/** Passes `body` through, reporting progress about every 1 % (or 512 KiB); network failures become `REGISTRY_UNREACHABLE`. */
async function* counting(
  body: AsyncIterable<Buffer>,
  total: number,
  report: (n: number) => void,
  registry: string,
): AsyncGenerator<Buffer> {
  let n = 0;
  let last = 0;
  const step = Math.max(512 << 10, Math.floor(total / 100));
  try {
    for await (const c of body) {
      n += c.byteLength;
      if (n - last >= step) {
        last = n;
        report(n);
      }
      yield c;
    }
  } catch (e) {
    if (e instanceof BerthError) throw e;
    throw new RegistryError(
      'REGISTRY_UNREACHABLE',
      registry,
      `the connection to ${registry} broke while downloading a layer: ${(e as Error)?.message ?? e}`,
      {},
      { cause: e },
    );
  }
  if (n !== last) report(n);
}

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/**
 * Decodes a zstd stream (detected by its magic number) with fzstd, a pure-JavaScript decoder,
 * since Node.js 20's zlib has no zstd; anything else passes through for the unpacker to detect.
 */
export async function* decodeZstd(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.byteLength === 0) first = await it.next();
  if (first.done) return;
  const head = first.value;
  const isZstd = head.byteLength >= 4 && ZSTD_MAGIC.every((b, i) => head[i] === b);
  const rest = { [Symbol.asyncIterator]: () => it };
  if (!isZstd) {
    yield head;
    yield* rest;
    return;
  }
  const out: Uint8Array[] = [];
  const d = new Decompress((chunk) => out.push(Buffer.from(chunk)));
  const push = (c: Uint8Array, final: boolean): void => {
    try {
      d.push(c, final);
    } catch (e) {
      throw new InvalidArgumentError('layer', `the zstd-compressed layer is corrupt: ${(e as Error).message}`, {
        cause: e,
      });
    }
  };
  push(head, false);
  while (out.length > 0) yield out.shift() as Uint8Array;
  for await (const c of rest) {
    push(c, false);
    while (out.length > 0) yield out.shift() as Uint8Array;
  }
  push(new Uint8Array(0), true);
  while (out.length > 0) yield out.shift() as Uint8Array;
}
