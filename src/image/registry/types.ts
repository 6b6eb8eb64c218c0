/**
 * The documented shapes of pull, push and the registry settings.
 *
 * @module
 */

/**
 * Credentials for a registry, as `docker login` stores them. One of:
 *
 * - `{ username, password }`: sent as Basic auth, or exchanged for a token when the registry asks
 *   for a Bearer token;
 * - `{ identitytoken }`: an OAuth refresh token (what `docker login` keeps for some registries),
 *   exchanged for an access token;
 * - `{ registrytoken }`: a bearer token sent as is, with no exchange.
 */
export type RegistryAuth =
  { username: string; password: string } | { identitytoken: string } | { registrytoken: string };

/** A platform in OCI names, for choosing an image in a multi-platform index. */
export interface PullPlatform {
  /** Operating system: `linux`. Default `linux`. */
  os?: string;
  /** CPU architecture: `amd64`, `arm64`, `arm`, … Default: this machine's. */
  architecture: string;
  /** Architecture variant: `v7`, `v8`. Absent: any variant matches (the index's first, or the default one). */
  variant?: string;
}

/** Options of `image.pull()`, as `docker pull`. */
export interface PullOptions {
  /**
   * The platform to pull from a multi-platform image: `{ architecture: 'arm64' }` or
   * `'linux/arm64/v8'`. Default: this machine's (`process.arch` in OCI names), `linux`.
   */
  platform?: PullPlatform | string;
  /** Credentials. Absent: taken from the Docker config (`$DOCKER_CONFIG` or `~/.docker/config.json`). */
  auth?: RegistryAuth;
  /**
   * Cancels the pull: it rejects with `ABORTED` (the signal's reason as `cause`), removes its
   * partial layers and temp files and tags nothing; layers and blobs already verified and stored
   * stay (a later pull reuses them).
   */
  signal?: AbortSignal;
  /** Cancels the pull after this many milliseconds, as `signal` does, with `TIMEOUT`. */
  timeout?: number;
}

/**
 * One progress event of a pull, as `docker pull` prints it. Layer events have the layer's short
 * id (12 hex digits of its compressed digest); the final events (`Digest: …`, `Status: …`) have
 * the reference as `id`.
 *
 * Statuses, in order per layer: `Pulling fs layer`, `Waiting`, `Downloading` (with `current` and
 * `total` bytes), `Verifying Checksum`, `Download complete`, `Extracting`, `Pull complete`; or
 * `Already exists` for a layer already stored.
 */
export interface PullProgress {
  /** The layer's short id, or the reference for image-wide events. */
  id: string;
  /** What happens, in Docker's words. */
  status: string;
  /** Bytes done so far; present with `Downloading`. */
  current?: number;
  /** The layer's size in bytes; present with `Downloading` when the registry says it. */
  total?: number;
}

/** Options of `image.push()`, as `docker push`. */
export interface PushOptions {
  /** Credentials. Absent: taken from the Docker config (`$DOCKER_CONFIG` or `~/.docker/config.json`). */
  auth?: RegistryAuth;
  /**
   * Cancels the push: it rejects with `ABORTED` (the signal's reason as `cause`). The manifest is
   * pushed last, so a cancelled push tags nothing in the registry; blobs already uploaded stay there.
   */
  signal?: AbortSignal;
  /** Cancels the push after this many milliseconds, as `signal` does, with `TIMEOUT`. */
  timeout?: number;
}

/**
 * One progress event of a push, as `docker push` prints it. Statuses per layer: `Preparing`,
 * `Waiting`, `Pushing` (with `current` bytes), `Pushed`, `Layer already exists`, or
 * `Mounted from <repository>`; finally `<tag>: digest: sha256:… size: N` with the reference as `id`.
 */
export interface PushProgress {
  /** The layer's short id, or the reference for image-wide events. */
  id: string;
  /** What happens, in Docker's words. */
  status: string;
  /** Bytes sent so far; present with `Pushing`. */
  current?: number;
  /** The layer's size in bytes, when known. */
  total?: number;
}

/**
 * The HTTP dispatcher the registry client sends its requests through: an undici `Dispatcher`
 * (an `Agent`, a `ProxyAgent`, or a `MockAgent` in tests). Typed structurally so that berth's
 * public types do not depend on undici's.
 */
export interface RegistryDispatcher {
  /** Starts one request (undici's `Dispatcher.dispatch`). */
  dispatch(options: unknown, handler: unknown): boolean;
}

/** How the engine talks to registries; see `EngineOptions`. */
export interface RegistrySettings {
  /**
   * Registries (`host` or `host:port`, or a CIDR such as `10.0.0.0/8`) that may be reached over
   * plain HTTP or with an unverified certificate, as Docker's `insecure-registries`. Loopback
   * registries (`localhost`, `127.0.0.0/8`, `::1`) always may.
   */
  insecureRegistries?: string[];
  /** Extra certificate authorities (PEM) trusted for registries, in addition to the system ones. */
  registryCAs?: string[];
  /** The HTTP dispatcher (seam). Default: an undici `Agent` that trusts `registryCAs`. */
  registryDispatcher?: RegistryDispatcher;
  /** Layers downloaded at once per pull, as Docker's `max-concurrent-downloads`. Default 3. */
  maxConcurrentDownloads?: number;
  /** Layers uploaded at once per push, as Docker's `max-concurrent-uploads`. Default 5. */
  maxConcurrentUploads?: number;
  /** Bytes per PATCH request of a chunked layer upload. Default 16 MiB. */
  uploadChunkSize?: number;
  /** Retries of a request that failed with a 5xx, 429 or a dropped connection. Default 3. */
  registryRetries?: number;
  /** The first retry's delay in milliseconds; each next one doubles. Default 250. */
  registryRetryDelay?: number;
}
