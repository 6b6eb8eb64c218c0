/**
 * Content digests (`sha256:<64 hex>`), the names of everything in the image store.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

/** Is `value` a well-formed sha256 digest (`sha256:` and 64 lowercase hex digits)? */
export function isSha256Digest(value: string): boolean {
  return SHA256_RE.test(value);
}

/**
 * Returns the hex part of a sha256 digest.
 *
 * @throws InvalidArgumentError naming `field` when `digest` is not `sha256:<64 hex>`.
 */
export function digestHex(digest: string, field = 'digest'): string {
  if (!SHA256_RE.test(digest)) {
    throw new InvalidArgumentError(field, `'${digest}' is not a sha256 digest (expected sha256:<64 lowercase hex>)`);
  }
  return digest.slice(7);
}

/** The sha256 digest of `data`, as `sha256:<hex>`. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
