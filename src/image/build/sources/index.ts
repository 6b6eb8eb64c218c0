/**
 * What `ADD` and `RUN --mount` take from outside the build context: archives, URLs, cache
 * mounts and secrets. See README.md.
 *
 * @module
 */
export { detectArchive, extractArchiveInto, type ArchiveKind } from './archive.js';
export { fetchSource, parseChecksum, urlFileName } from './fetch.js';
export {
  MOUNT_TYPES,
  parseRunMount,
  resolveMountTarget,
  type BindMount,
  type CacheMount,
  type CacheSharing,
  type RunMount,
  type SecretMount,
  type SshMount,
  type TmpfsMount,
} from './run-mount.js';
export { CacheMounts, type CacheAcquireOptions, type CacheLease } from './cache-mounts.js';
export { prepareSecret, type PreparedSecret } from './secrets.js';
