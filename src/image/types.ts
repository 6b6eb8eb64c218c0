/**
 * The public shapes of the image API: what `Image` methods accept and return.
 *
 * @module
 */
import type { ImageRunSettings } from './image-config.js';

export type { HealthcheckInfo, ImageRunSettings } from './image-config.js';

/** One step of an image's history, as `docker history` shows it. */
export interface ImageHistoryEntry {
  /** When the step ran (RFC 3339); absent when unknown. */
  created?: string;
  /** The instruction or command of the step; absent when unknown. */
  createdBy?: string;
  /** Who made it; absent when unknown. */
  author?: string;
  /** A free comment (`Imported from …` for imports); absent when none. */
  comment?: string;
  /** True when the step made no layer. */
  emptyLayer: boolean;
}

/** What `image.inspect()` returns, as `docker image inspect` reports it. */
export interface ImageInfo {
  /** The image id: `sha256:` + sha256 of the image config. */
  id: string;
  /** Tags pointing at the image, as Docker prints them (`busybox:latest`), sorted. Empty when dangling. */
  repoTags: string[];
  /** Registry digests (`name@sha256:…`), sorted. Empty for images that never came from a registry. */
  repoDigests: string[];
  /** Creation time (RFC 3339). */
  created: string;
  /** Total size of the unpacked layers in bytes. */
  size: number;
  /** CPU architecture in OCI names (`amd64`, `arm64`). */
  architecture: string;
  /** Architecture variant (`v8`); absent when the image has none. */
  variant?: string;
  /** Operating system (`linux`). */
  os: string;
  /** Author; absent when not set. */
  author?: string;
  /** Comment; absent when not set. */
  comment?: string;
  /** The defaults containers get from the image. */
  config: ImageRunSettings;
  /** The layers' diffIDs, bottom first (Docker's `RootFS.Layers`). */
  layers: string[];
  /** Build history, oldest first. */
  history: ImageHistoryEntry[];
}

/** One row of `Image.list()`, as `docker images` lists it. */
export interface ImageSummary {
  /** The image id. */
  id: string;
  /** Tags, as Docker prints them, sorted. Empty when dangling. */
  repoTags: string[];
  /** Registry digests, sorted. Empty when none. */
  repoDigests: string[];
  /** Creation time (RFC 3339). */
  created: string;
  /** Total size of the unpacked layers in bytes. */
  size: number;
  /** The image's labels. Empty when none. */
  labels: Record<string, string>;
}

/** Filters of `Image.list()`, as `docker images --filter`. */
export interface ImageListOptions {
  /**
   * Also list intermediate images (untagged parents of other images), as `docker images -a`.
   * Imported images have no parents, so today this changes nothing.
   */
  all?: boolean;
  /** `true`: only dangling images (no tag); `false`: only tagged ones. Absent: both. */
  dangling?: boolean;
  /** Glob(s) on the reference as Docker prints it (`busybox`, `busybox:1.*`, `localhost:5000/*`); any may match. */
  reference?: string | string[];
  /** `key` or `key=value` (one or several); all must match. */
  label?: string | string[];
}

/** Options of `image.remove()`, as `docker rmi`. */
export interface ImageRemoveOptions {
  /**
   * Remove an image that has several tags, or that a container uses, as `docker rmi -f`. An image
   * a container uses is only untagged: its data stays (as a dangling image) while a container
   * needs it, since the container's filesystem is made of its layers.
   */
  force?: boolean;
  /**
   * Keep untagged parent images, as `docker rmi --no-prune`. Imported images have no parents, so
   * today this changes nothing.
   */
  noPrune?: boolean;
}

/** One thing `image.remove()` did: a reference removed, or an image deleted. */
export type ImageRemoveResult = { untagged: string } | { deleted: string };

/** Options of `Image.import()`, as `docker import`. */
export interface ImportOptions {
  /** The reference to tag the new image with (`app:1.0`). Absent: the image is untagged (dangling). */
  ref?: string;
  /**
   * Dockerfile instructions to apply to the config, as `docker import --change`: `CMD`,
   * `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`, `ONBUILD`, `STOPSIGNAL`, `USER`,
   * `VOLUME`, `WORKDIR`.
   */
  changes?: string | string[];
  /** The history comment. Absent: `Imported from <source>`. */
  message?: string;
  /** Cancels the import with `ABORTED` (the signal's reason as cause); nothing is left behind. */
  signal?: AbortSignal;
  /** Cancels it after this many milliseconds with `TIMEOUT`; nothing is left behind. */
  timeout?: number;
}

/** What an image import reads: a tar file or a directory path, a byte stream, or bytes. */
export type ImportSource = string | NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array;

/** What the container runtime needs to run an image. */
export interface ResolvedImage {
  /** The image id. */
  id: string;
  /** The image's container defaults. */
  config: ImageRunSettings;
  /** The layers' diffIDs, topmost first (an overlayfs `lowerdir` list through `LayerStore.fsDir`). */
  layers: string[];
}

/** What `Image.prune()` removed, as `docker image prune` reports it. */
export interface ImagePruneResult {
  /** Ids of the images deleted. Empty when none. */
  deleted: string[];
  /** References removed from them, as Docker prints them. Empty when none. */
  untagged: string[];
  /** Bytes freed: the sizes of the layers no remaining image uses. */
  spaceReclaimed: number;
}

/** One row of `image.history()`, as `docker history` shows it: newest first. */
export interface ImageHistoryItem {
  /** The image id on the newest row; `null` on the others (Docker's `<missing>`). */
  id: string | null;
  /** When the step ran (RFC 3339); absent when unknown. */
  created?: string;
  /** The instruction or command of the step; empty when unknown. */
  createdBy: string;
  /** Who made it; absent when unknown. */
  author?: string;
  /** A free comment; absent when none. */
  comment?: string;
  /** True when the step made no layer. */
  emptyLayer: boolean;
  /** Size in bytes of the layer the step made (the sum of its files' sizes); 0 for empty steps. */
  size: number;
  /** The image's tags on the newest row, as Docker prints them; empty on the others. */
  tags: string[];
}
