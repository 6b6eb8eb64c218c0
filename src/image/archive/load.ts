/**
 * `docker load`: an image archive (docker-archive or OCI layout, detected) into the store.
 *
 * ```text
 * source ─▶ a tar path as is; a stream spooled to layers/staging/<pid>-<start>-<rand>; a directory as a layout
 *        ─▶ ArchiveIndex.scan (headers only) | DirectoryLayout ─▶ format reader ─▶ plan (configs read and verified)
 *        ─▶ each missing layer: byte range ─▶ blob digest ─▶ LayerStore.stage (diffID checked), in parallel
 *        ─▶ under the store lock: configs, layer commits, records, tags ─▶ events
 * ```
 *
 * Nothing becomes visible before every digest was checked: a failure anywhere discards the
 * staged layers and the spool file, and the store is as it was. Layers already in the store are
 * not read at all.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BerthError, cleanupAfterAsync, InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { BlobStore } from '../blob-store.js';
import { ociImageConfigSchema } from '../image-config.js';
import type { ImageRecord, ImageRecords } from '../image-records.js';
import type { LayerStore, StagedLayer } from '../layer-store.js';
import type { ImportSource } from '../types.js';
import { ArchiveIndex, type ArchiveReader } from './archive-index.js';
import { DirectoryLayout } from './directory-layout.js';
import { isDockerArchive, readDockerArchive } from './docker-archive.js';
import { isOciLayout, readOciLayout } from './oci-layout.js';
import { parseDocument, type PlannedImage, type PlannedLayer } from './plan.js';
import { hostPlatform, type Platform } from './platform.js';
import type { ArchiveFormat, LoadedImage, LoadProgress } from './types.js';
import { ownerTag } from '../../runtime/proc.js';
import { mapLimit } from '../pull.js';

/** What the loader needs from the image service. */
export interface LoadContext {
  /** The content store (configs). */
  blobs: BlobStore;
  /** The layer store. */
  layers: LayerStore;
  /** Records and references (and the store lock). */
  records: ImageRecords;
  /** Appends an image event to the engine's log. */
  event(action: string, id: string, name: string): Promise<void>;
}

/** Options of {@link loadArchive}, already validated. */
export interface LoadArchiveOptions {
  /** The platform to take from multi-platform indexes; default this machine's. */
  platform?: Platform;
  /** Cancels the load. */
  signal?: AbortSignal;
  /** How many layers to unpack at once. Default 3. */
  concurrency?: number;
}

/**
 * Opens the archive: a tar file in place, a directory as an image layout, and anything else
 * (stream, bytes) spooled into a private file under the layer store's staging directory.
 */
async function openArchive(
  ctx: LoadContext,
  source: ImportSource,
  signal?: AbortSignal,
): Promise<{ reader: ArchiveReader; cleanup(): Promise<void> }> {
  const none = async (): Promise<void> => undefined;
  if (typeof source === 'string') {
    const st = await fs.promises.stat(source).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NotFoundError(
          'path',
          source,
          `'${source}' does not exist; give an image archive (tar) or an image layout directory`,
          { cause: e },
        );
      throw e;
    });
    if (st.isDirectory()) return { reader: new DirectoryLayout(source), cleanup: none };
    if (!st.isFile())
      throw new InvalidArgumentError(
        'source',
        `'${source}' is not a file or directory; give an image archive (tar) made by save`,
      );
    return { reader: await ArchiveIndex.scan(source), cleanup: none };
  }
  const dir = join(ctx.layers.dir, 'staging');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${ownerTag()}-${randomBytes(8).toString('hex')}`);
  const cleanup = (): Promise<void> => fs.promises.rm(path, { force: true });
  try {
    const input = source instanceof Uint8Array ? [source] : (source as AsyncIterable<Uint8Array>);
    await pipeline(
      input,
      fs.createWriteStream(path, { flags: 'wx', mode: 0o600 }),
      signal === undefined ? {} : { signal },
    );
    return { reader: await ArchiveIndex.scan(path), cleanup };
  } catch (e) {
    throw await cleanupAfterAsync(e, cleanup);
  }
}

/** Reads the archive's images, detecting its format. */
async function plan(index: ArchiveReader, want: Platform): Promise<{ format: ArchiveFormat; images: PlannedImage[] }> {
  if (isDockerArchive(index)) return { format: 'docker', images: await readDockerArchive(index) };
  if (isOciLayout(index)) return { format: 'oci', images: await readOciLayout(index, want) };
  throw new InvalidArgumentError(
    'archive',
    'this is neither a docker-archive (no manifest.json) nor an OCI image layout (no oci-layout and index.json)',
  );
}

/** Checks a planned image's config and returns its diffIDs and creation time. */
function checkConfig(img: PlannedImage): { diffIds: string[]; created: string | undefined } {
  const config = parseDocument(img.config, ociImageConfigSchema, `config ${img.id}`);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== img.layers.length) {
    throw new InvalidArgumentError(
      'archive',
      `image ${img.id} lists ${img.layers.length} layers but its config has ${diffIds.length} diffIDs`,
    );
  }
  return { diffIds, created: config.created };
}

/** Stages one layer from its byte range, checking the blob digest as it streams. */
async function stageLayer(
  ctx: LoadContext,
  index: ArchiveReader,
  layer: PlannedLayer,
  diffId: string,
  options: LoadArchiveOptions,
  emit: (p: LoadProgress) => void,
): Promise<StagedLayer> {
  const hash = createHash('sha256');
  let read = 0;
  const total = layer.file.size;
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const chunk of index.stream(layer.file) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      read += chunk.byteLength;
      emit({ id: diffId, status: 'Loading layer', current: read, total });
      yield chunk;
    }
  }
  const staged = await ctx.layers.stage(counted(), {
    expectedDiffId: diffId,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    // The unpacker may stop at the end of the compressed stream: hash what it left unread.
    if (read < total)
      for await (const chunk of index.stream(layer.file, read) as AsyncIterable<Buffer>) hash.update(chunk);
    const got = `sha256:${hash.digest('hex')}`;
    if (layer.blobDigest !== undefined && got !== layer.blobDigest) {
      throw new InvalidArgumentError(
        'archive',
        `layer blob '${layer.file.name}' has digest ${got}, but the archive says ${layer.blobDigest}; the archive is corrupt or was tampered with`,
      );
    }
  } catch (e) {
    throw await cleanupAfterAsync(e, () => staged.discard());
  }
  emit({ id: diffId, status: 'Loaded layer' });
  return staged;
}

/**
 * Loads every image of the archive `source` (a tar or directory path, a stream or bytes) and tags them as the
 * archive says; a tag that pointed at another image moves, leaving that image dangling.
 *
 * @throws InvalidArgumentError (field `archive` for malformed archives and digest mismatches,
 *   `platform` when a multi-platform index has no image for the platform); UnsafeLayerError for
 *   paths escaping the archive and for layers escaping their directory; NotFoundError for a
 *   missing path. The store is unchanged after any failure.
 */
export async function loadArchive(
  ctx: LoadContext,
  source: ImportSource,
  options: LoadArchiveOptions,
  emit: (p: LoadProgress) => void,
): Promise<LoadedImage[]> {
  options.signal?.throwIfAborted();
  const want = options.platform ?? hostPlatform();
  const { reader: index, cleanup } = await openArchive(ctx, source, options.signal);
  const staged = new Map<string, StagedLayer>();
  try {
    const { format, images: planned } = await plan(index, want);
    // One record per image id, with the references of every entry naming it.
    const byId = new Map<string, PlannedImage & { diffIds: string[]; created: string | undefined }>();
    for (const img of planned) {
      const prev = byId.get(img.id);
      if (prev !== undefined) {
        prev.refs.push(...img.refs.filter((r) => !prev.refs.some((p) => p.toString() === r.toString())));
        continue;
      }
      byId.set(img.id, { ...img, refs: [...img.refs], ...checkConfig(img) });
    }
    const images = [...byId.values()];
    for (const img of images) {
      if (img.platform !== undefined) {
        emit({
          id: img.platform.manifest,
          status: 'Selected platform',
          platform: img.platform.chosen,
          available: img.platform.available,
        });
      }
    }
    const todo = new Map<string, PlannedLayer>();
    for (const img of images) {
      img.diffIds.forEach((d, i) => {
        if (todo.has(d)) return;
        if (ctx.layers.has(d)) emit({ id: d, status: 'Already exists' });
        else todo.set(d, img.layers[i] as PlannedLayer);
      });
    }
    await mapLimit([...todo], Math.max(1, options.concurrency ?? 3), async ([d, layer]) => {
      staged.set(d, await stageLayer(ctx, index, layer, d, options, emit));
    });
    options.signal?.throwIfAborted();
    const events: Array<[string, string, string]> = [];
    await ctx.records.locked(async () => {
      for (const img of images) {
        if (!(await ctx.blobs.has(img.id))) await ctx.blobs.ingest(img.config, { expectedDigest: img.id });
        let size = 0;
        for (const d of img.diffIds) {
          const s = staged.get(d);
          const info = s !== undefined ? await ctx.layers.commit(s) : ctx.layers.get(d);
          if (info === undefined)
            throw new BerthError(
              'CONFLICT',
              `layer ${d} was removed by another process during the load; load the archive again`,
            );
          size += info.size;
        }
        const record: ImageRecord = {
          id: img.id,
          layers: img.diffIds,
          size,
          created: img.created ?? new Date().toISOString(),
        };
        ctx.records.put(record);
        const refs = ctx.records.refs();
        for (const r of img.refs) refs[r.toString()] = img.id;
        ctx.records.setRefs(refs);
        events.push(['load', img.id, img.refs[0]?.familiar ?? img.id]);
        for (const r of img.refs) events.push(['tag', img.id, r.familiar]);
      }
    });
    for (const [action, id, name] of events) await ctx.event(action, id, name);
    return images.map((img) => {
      const refs = img.refs.map((r) => r.familiar);
      for (const ref of refs.length === 0 ? [undefined] : refs) {
        emit({
          id: img.id,
          status: 'Loaded image',
          ...(ref === undefined ? {} : { ref }),
          ...(img.platform ? { platform: img.platform.chosen } : {}),
        });
      }
      return { id: img.id, refs, format, ...(img.platform === undefined ? {} : { platform: img.platform.chosen }) };
    });
  } finally {
    for (const s of staged.values()) await s.discard();
    await cleanup();
  }
}
