/**
 * The images the store makes itself: `docker import` (a one-layer image), `docker commit` (a
 * layer over a parent image) and `docker build` (a config whose layers the build committed), and
 * the one way each is recorded (under the store lock, with its events).
 *
 * @module
 */
import type { BlobStore } from './blob-store.js';
import type { ImageRecord, ImageRecords } from './image-records.js';
import type { OciContainerConfig, OciImageConfig } from './image-config.js';
import { checkImportOptions, openSource, taggable } from './import-source.js';
import type { LayerSource } from './layer-unpack.js';
import type { LayerStore } from './layer-store.js';
import { commitConfig, importConfig } from './new-config.js';
import type { ImageReference } from './reference.js';
import { imageNotFound } from './resolve.js';
import type { ImageInfo, ImportOptions, ImportSource } from './types.js';

/** What making an image needs of the image service. */
export interface NewImageContext {
  /** Image configs. */
  blobs: BlobStore;
  /** Unpacked layers. */
  layers: LayerStore;
  /** Image records and the reference index. */
  records: ImageRecords;
  /** The record of an image by reference, id or prefix. @throws NotFoundError */
  record(ref: string): ImageRecord;
  /** The config of an image by id. */
  config(id: string): Promise<OciImageConfig>;
  /** The image's details, for the result. */
  info(rec: ImageRecord): Promise<ImageInfo>;
  /** Appends an image event. */
  event(action: string, id: string, name: string): Promise<void>;
}

/**
 * Under the store lock: checks (`verify`), commits the staged layer (if any), writes the record
 * and moves `refs` to it; then sends `action` (and `tag`) events. Shared by import, commit and
 * build.
 */
export async function storeImage(
  ctx: NewImageContext,
  record: ImageRecord,
  configJson: string,
  staged: Parameters<LayerStore['commit']>[0] | undefined,
  refs: readonly ImageReference[],
  action: string,
  verify: () => void = () => undefined,
): Promise<ImageInfo> {
  const id = record.id;
  const events: Array<[string, string]> = [[action, refs[0]?.familiar ?? id]];
  await ctx.records.locked(async () => {
    // An identical image removed meanwhile by another process took the config with it.
    if (!(await ctx.blobs.has(id))) await ctx.blobs.ingest(configJson);
    verify();
    if (staged !== undefined) await ctx.layers.commit(staged);
    ctx.records.put(record);
    if (refs.length > 0) {
      const all = ctx.records.refs();
      for (const ref of refs) {
        all[ref.toString()] = id;
        events.push(['tag', ref.familiar]);
      }
      ctx.records.setRefs(all);
    }
  });
  for (const [a, n] of events) await ctx.event(a, id, n);
  return ctx.info(record);
}

/**
 * Imports a root filesystem (tar file, directory, tar stream or bytes; plain or gzip) as a
 * one-layer image, as `docker import`, and returns it. With `ref`, the tag moves to the new
 * image; an image it pointed at before stays, untagged.
 *
 * @throws InvalidArgumentError (fields `ref`, `changes`, `layer`) before anything is written;
 *   UnsafeLayerError when the archive tries to escape its directory; NotFoundError for a missing
 *   path.
 */
export async function importImage(
  ctx: NewImageContext,
  source: ImportSource,
  options: ImportOptions = {},
): Promise<ImageInfo> {
  const { ref, runConfig } = checkImportOptions(options);
  const { stream, name } = await openSource(source);
  const staged = await ctx.layers.stage(stream, options.signal ? { signal: options.signal } : {});
  try {
    const created = new Date().toISOString();
    const comment = options.message ?? `Imported from ${name}`;
    const config = importConfig(staged.diffId, runConfig, created, comment, options.message);
    const configJson = JSON.stringify(config);
    const { digest: id } = await ctx.blobs.ingest(configJson);
    const record: ImageRecord = { id, layers: [staged.diffId], size: staged.size, created };
    return await storeImage(ctx, record, configJson, staged, ref ? [ref] : [], 'import');
  } finally {
    await staged.discard();
  }
}

/**
 * Adds a layer on top of image `parentId` and records the result as a new image, as
 * `docker commit` does: the config is the parent's, with the run settings `runConfig` derives
 * from the parent's, and one history entry appended. With `ref`, the tag moves to the new image.
 *
 * @throws NotFoundError when the parent is gone; InvalidArgumentError (field `ref`);
 *   UnsafeLayerError when the layer tries to escape its directory.
 */
export async function commitImage(
  ctx: NewImageContext,
  parentId: string,
  layer: LayerSource,
  options: {
    ref?: string;
    runConfig: (parent: OciContainerConfig) => OciContainerConfig;
    author?: string;
    comment?: string;
    createdBy?: string;
  },
): Promise<ImageInfo> {
  const ref = options.ref === undefined ? undefined : taggable(options.ref);
  const parent = ctx.record(parentId);
  const parentConfig = await ctx.config(parent.id);
  const runConfig = options.runConfig(parentConfig.config ?? {});
  const staged = await ctx.layers.stage(layer);
  try {
    const created = new Date().toISOString();
    const config = commitConfig(parentConfig, runConfig, staged.diffId, created, options);
    const configJson = JSON.stringify(config);
    const { digest: id } = await ctx.blobs.ingest(configJson);
    const record: ImageRecord = {
      id,
      layers: [...parent.layers, staged.diffId],
      size: parent.size + staged.size,
      created,
    };
    return await storeImage(ctx, record, configJson, staged, ref ? [ref] : [], 'commit', () => {
      for (const d of parent.layers) {
        if (!ctx.layers.has(d)) throw imageNotFound(parentId);
      }
    });
  } finally {
    await staged.discard();
  }
}

/**
 * Records a built image (its config, whose layers are committed) and moves `tags` to it; sends
 * a `build` event and a `tag` event per tag.
 *
 * @throws NotFoundError when a layer of the config is gone (removed meanwhile; build again).
 */
export async function storeBuiltImage(
  ctx: NewImageContext,
  config: OciImageConfig,
  tags: readonly string[],
): Promise<ImageInfo> {
  const refs = tags.map(taggable);
  const configJson = JSON.stringify(config);
  const { digest: id } = await ctx.blobs.ingest(configJson);
  const diffIds = config.rootfs.diff_ids;
  const size = diffIds.reduce((n, d) => n + (ctx.layers.get(d)?.size ?? 0), 0);
  const record: ImageRecord = { id, layers: [...diffIds], size, created: config.created ?? new Date().toISOString() };
  return storeImage(ctx, record, configJson, undefined, refs, 'build', () => {
    for (const d of diffIds) if (!ctx.layers.has(d)) throw imageNotFound(id);
  });
}
