/**
 * The public shapes of `image.save()` and `Image.load()`.
 *
 * @module
 */

/** The two archive formats berth reads and writes. */
export type ArchiveFormat = 'docker' | 'oci';

/** Options of `image.save()` and `Image.save()`. */
export interface SaveOptions {
  /**
   * `docker` (default): the format of `docker save` — `manifest.json`, `<id>.json` configs,
   * `<layer>/layer.tar` and the legacy `repositories` file. `oci`: an OCI image layout
   * (`oci-layout`, `index.json`, `blobs/sha256/…`), as `skopeo copy … oci-archive:` writes it.
   * Layers are written uncompressed in both.
   */
  format?: ArchiveFormat;
}

/** Options of `Image.load()`. */
export interface LoadOptions {
  /**
   * The platform to take from a multi-platform OCI index (`linux/arm64`, `linux/arm/v7`).
   * Absent: this machine's.
   */
  platform?: string;
  /** Cancels the load with `ABORTED` (the signal's reason as `cause`); nothing is tagged or left behind. */
  signal?: AbortSignal;
  /** Cancels the load after this many milliseconds, as `signal` does, with `TIMEOUT`. */
  timeout?: number;
}

/** A progress event of `Image.load()`, in the shape of `docker load`'s and `docker pull`'s. */
export interface LoadProgress {
  /** The layer's diffID, the image id, or the manifest digest (for `Selected platform`). */
  id: string;
  /**
   * `Loading layer` (with `current`/`total` bytes of the layer's blob), `Already exists`,
   * `Loaded layer`, `Selected platform` (with `platform`) or `Loaded image` (with `ref` when
   * the image was tagged).
   */
  status: 'Loading layer' | 'Already exists' | 'Loaded layer' | 'Selected platform' | 'Loaded image';
  /** Bytes of the layer's blob read so far; absent on other events. */
  current?: number;
  /** Size of the layer's blob in the archive; absent on other events. */
  total?: number;
  /** On `Selected platform`: the platform taken (`linux/amd64`), and on `Loaded image` when known. */
  platform?: string;
  /** On `Selected platform`: every platform the index offered. */
  available?: string[];
  /** On `Loaded image`: the reference it was tagged with, as Docker prints it; absent when untagged. */
  ref?: string;
}

/** What the image service reports for each image a load wrote. */
export interface LoadedImage {
  /** The image id. */
  id: string;
  /** References it was tagged with, as Docker prints them (`busybox:latest`). Empty when none. */
  refs: string[];
  /** The format the archive was in. */
  format: ArchiveFormat;
  /** The platform taken from a multi-platform index; absent when the archive offered one image. */
  platform?: string;
}
