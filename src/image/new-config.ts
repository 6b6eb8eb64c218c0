/**
 * The image configs of the images this store makes itself: a one-layer image (`docker import`)
 * and a layer on top of a parent image (`docker commit`).
 *
 * @module
 */
import { ociPlatform, type OciContainerConfig, type OciImageConfig } from './image-config.js';

/**
 * The config of an imported image: layer `diffId`, the run settings `runConfig`, one history
 * entry with `comment`, and the image's `comment` when the import gave a `message`.
 */
export function importConfig(
  diffId: string,
  runConfig: OciContainerConfig,
  created: string,
  comment: string,
  message: string | undefined,
): OciImageConfig {
  const config: OciImageConfig = {
    ...ociPlatform(),
    os: 'linux',
    created,
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, comment }],
    ...(message === undefined ? {} : { comment: message }),
  };
  return config;
}

/**
 * The config of a committed image: the parent's, with the run settings `runConfig`, layer
 * `diffId` on top of the parent's and one history entry appended; its author and comment are
 * the commit's, if any.
 */
export function commitConfig(
  parentConfig: OciImageConfig,
  runConfig: OciContainerConfig,
  diffId: string,
  created: string,
  options: { author?: string; comment?: string; createdBy?: string },
): OciImageConfig {
  const config: OciImageConfig = {
    ...parentConfig,
    created,
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: [...parentConfig.rootfs.diff_ids, diffId] },
    history: [
      ...(parentConfig.history ?? []),
      {
        created,
        ...(options.createdBy === undefined ? {} : { created_by: options.createdBy }),
        ...(options.author === undefined ? {} : { author: options.author }),
        ...(options.comment === undefined ? {} : { comment: options.comment }),
      },
    ],
  };
  delete config.author;
  delete config.comment;
  if (options.author !== undefined) config.author = options.author;
  if (options.comment !== undefined) config.comment = options.comment;
  return config;
}
