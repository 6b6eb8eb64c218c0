/**
 * How stored images read as the documented shapes: an image record and its config become
 * {@link ImageInfo} (`docker inspect`) and history rows (`docker history`); the reference index
 * becomes each image's `repoTags` and `repoDigests`. Pure functions.
 *
 * @module
 */
import { runSettings, type OciImageConfig } from './image-config.js';
import type { ImageRecord } from './image-records.js';
import { parseReference, type ImageReference } from './reference.js';
import type { ImageHistoryEntry, ImageHistoryItem, ImageInfo } from './types.js';

/** The references of the index `refs` (reference → image id), by image id. */
export function refsByImage(refs: Readonly<Record<string, string>>): Map<string, ImageReference[]> {
  const map = new Map<string, ImageReference[]>();
  for (const [key, id] of Object.entries(refs)) {
    const list = map.get(id) ?? [];
    list.push(parseReference(key, { defaultTag: false }));
    map.set(id, list);
  }
  return map;
}

/** An image's references as Docker prints them: tags, and digests as `name@sha256:…`. */
export function repoStrings(refs: readonly ImageReference[]): { repoTags: string[]; repoDigests: string[] } {
  return {
    repoTags: refs
      .filter((r) => r.tag !== undefined && r.digest === undefined)
      .map((r) => r.familiar)
      .sort(),
    repoDigests: refs
      .filter((r) => r.digest !== undefined)
      .map((r) => `${r.familiarName}@${r.digest}`)
      .sort(),
  };
}

/** The details of image `rec` with config `c` and references `refs`, as `docker inspect`. */
export function imageInfo(rec: ImageRecord, c: OciImageConfig, refs: readonly ImageReference[]): ImageInfo {
  const history: ImageHistoryEntry[] = (c.history ?? []).map((h) => ({
    ...(h.created === undefined ? {} : { created: h.created }),
    ...(h.created_by === undefined ? {} : { createdBy: h.created_by }),
    ...(h.author === undefined ? {} : { author: h.author }),
    ...(h.comment === undefined ? {} : { comment: h.comment }),
    emptyLayer: h.empty_layer === true,
  }));
  return {
    id: rec.id,
    ...repoStrings(refs),
    created: c.created ?? rec.created,
    size: rec.size,
    architecture: c.architecture,
    ...(c.variant === undefined ? {} : { variant: c.variant }),
    os: c.os,
    ...(c.author === undefined ? {} : { author: c.author }),
    ...(c.comment === undefined ? {} : { comment: c.comment }),
    config: runSettings(c.config),
    layers: [...c.rootfs.diff_ids],
    history,
  };
}

/**
 * The history rows of image `id` with config `c` and references `refs`, newest first, as
 * `docker history`; `layerSize` gives the size of a stored layer by diffID (0 when unknown).
 */
export function historyRows(
  id: string,
  c: OciImageConfig,
  refs: readonly ImageReference[],
  layerSize: (diffId: string) => number,
): ImageHistoryItem[] {
  const diffIds = c.rootfs.diff_ids;
  const steps =
    c.history && c.history.length > 0
      ? c.history
      : diffIds.map(() => ({}) as NonNullable<OciImageConfig['history']>[number]);
  let layer = 0;
  const rows: ImageHistoryItem[] = steps.map((h) => {
    const empty = h.empty_layer === true;
    const diffId = empty ? undefined : diffIds[layer++];
    return {
      id: null,
      ...(h.created === undefined ? {} : { created: h.created }),
      createdBy: h.created_by ?? '',
      ...(h.author === undefined ? {} : { author: h.author }),
      ...(h.comment === undefined ? {} : { comment: h.comment }),
      emptyLayer: empty,
      size: diffId === undefined ? 0 : layerSize(diffId),
      tags: [],
    };
  });
  rows.reverse();
  const top = rows[0];
  if (top !== undefined) {
    top.id = id;
    top.tags = repoStrings(refs).repoTags;
  }
  return rows;
}
