/**
 * Deleting images from the store: one image's record, config and unused layers, and
 * `docker image prune` over every image no container uses.
 *
 * @module
 */
import type { BlobStore } from './blob-store.js';
import type { ImageRecord, ImageRecords } from './image-records.js';
import type { LayerStore } from './layer-store.js';
import { parseReference } from './reference.js';
import type { ImagePruneResult } from './types.js';
import { refsByImage } from './views.js';

/** The stores an image is deleted from (the image service's). */
export interface ImageStores {
  /** Image configs. */
  blobs: BlobStore;
  /** Unpacked layers. */
  layers: LayerStore;
  /** Image records and the reference index. */
  records: ImageRecords;
  /** Layers something besides the image records still hands out (the build cache's). */
  keepLayers?(): ReadonlySet<string>;
}

/** What {@link pruneImages} needs of the image service. */
export interface PruneContext extends ImageStores {
  /** Ids of the containers that use image `imageId` (any state); empty when none. */
  imageUsers(imageId: string): Promise<string[]>;
  /** Appends an image event (`untag`, `delete`) to the engine's log. */
  event(action: string, id: string, name: string): Promise<void>;
}

/** Deletes an image record, its config blob and the layers no other record uses. Hold the lock. */
export async function deleteImage(stores: ImageStores, id: string): Promise<void> {
  const rec = stores.records.get(id);
  stores.records.delete(id);
  if (rec === undefined) return;
  const stillUsed = new Set([...stores.records.list().flatMap((r) => r.layers), ...(stores.keepLayers?.() ?? [])]);
  for (const d of new Set(rec.layers)) if (!stillUsed.has(d)) await stores.layers.remove(d);
  await stores.blobs.delete(id);
}

/**
 * Deletes dangling images (no tag), or with `all` every image, that no container uses, as
 * `docker image prune [-a]`.
 */
export async function pruneImages(ctx: PruneContext, options: { all?: boolean } = {}): Promise<ImagePruneResult> {
  const events: Array<[string, string, string]> = [];
  const result = await ctx.records.locked(async () => {
    const out: ImagePruneResult = { deleted: [], untagged: [], spaceReclaimed: 0 };
    const refsById = refsByImage(ctx.records.refs());
    const refs = ctx.records.refs();
    const victims: ImageRecord[] = [];
    for (const rec of ctx.records.list()) {
      const tagged = (refsById.get(rec.id) ?? []).some((r) => r.tag !== undefined);
      if ((tagged && options.all !== true) || (await ctx.imageUsers(rec.id)).length > 0) continue;
      victims.push(rec);
      for (const [key, id] of Object.entries(refs)) {
        if (id !== rec.id) continue;
        delete refs[key];
        const familiar = parseReference(key, { defaultTag: false }).familiar;
        out.untagged.push(familiar);
        events.push(['untag', rec.id, familiar]);
      }
    }
    ctx.records.setRefs(refs);
    for (const rec of victims) {
      const others = new Set(
        ctx.records
          .list()
          .filter((r) => r.id !== rec.id)
          .flatMap((r) => r.layers),
      );
      for (const d of new Set(rec.layers)) if (!others.has(d)) out.spaceReclaimed += ctx.layers.get(d)?.size ?? 0;
      await deleteImage(ctx, rec.id);
      out.deleted.push(rec.id);
      events.push(['delete', rec.id, rec.id]);
    }
    return out;
  });
  for (const [action, id, name] of events) await ctx.event(action, id, name);
  return result;
}
