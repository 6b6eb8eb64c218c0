/**
 * What a format reader finds in an archive, before anything is written: the images, each with its
 * config bytes, references and the archive files of its layers. The loader (`load.ts`) turns a
 * plan into store writes; the readers (`docker-archive.ts`, `oci-layout.ts`) only read and check.
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import { parseReference, type ImageReference } from '../reference.js';
import type { ArchiveFile, ArchiveReader } from './archive-index.js';

/** A layer to load: where its blob is in the archive and, when the format names it, its digest. */
export interface PlannedLayer {
  /** The layer's blob in the archive (plain, gzip or zstd tar). */
  file: ArchiveFile;
  /** The digest the blob must have (OCI descriptors, `blobs/sha256/<hex>` names); absent when unknown. */
  blobDigest?: string;
}

/** An image found in an archive. */
export interface PlannedImage {
  /** The image id: sha256 of {@link PlannedImage.config}, already checked against the archive's name for it. */
  id: string;
  /** The config as stored in the archive. */
  config: Buffer;
  /** References to tag it with. */
  refs: ImageReference[];
  /** Its layers, bottom first, one per `rootfs.diff_ids` entry. */
  layers: PlannedLayer[];
  /** The platform taken from a multi-platform index, and what the index offered. */
  platform?: { chosen: string; available: string[]; manifest: string };
}

/** Parses a JSON document of the archive with `schema`; failures name the document. */
export function parseDocument<T>(bytes: Buffer, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new InvalidArgumentError('archive', `${what} is not valid JSON`, { cause: e });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new InvalidArgumentError(
      'archive',
      `${what} is malformed at '${issue?.path.join('.') ?? ''}': ${issue?.message ?? 'invalid'}`,
      { cause: r.error },
    );
  }
  return r.data;
}

/**
 * Reads a file of the archive and checks it against `digest` (when given).
 *
 * @throws InvalidArgumentError (field `archive`) on a mismatch.
 */
export async function readVerified(
  index: ArchiveReader,
  file: ArchiveFile,
  digest: string | undefined,
  limit?: number,
): Promise<{ bytes: Buffer; digest: string }> {
  const bytes = await index.read(file, limit);
  const got = sha256Digest(bytes);
  if (digest !== undefined && got !== digest) {
    throw new InvalidArgumentError(
      'archive',
      `'${file.name}' has digest ${got}, but the archive says ${digest}; the archive is corrupt or was tampered with`,
    );
  }
  return { bytes, digest: got };
}

/** The digest a member name encodes (`<hex>.json`, `blobs/sha256/<hex>`), if any. */
export function digestInName(name: string): string | undefined {
  const m = /(?:^|\/)(?:sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(name);
  return m ? `sha256:${m[1]}` : undefined;
}

/**
 * Parses a reference an archive tags an image with (`busybox:latest`, `localhost:5000/a/b:1`).
 *
 * @throws InvalidArgumentError (field `archive`) when it is malformed or has a digest.
 */
export function archiveReference(ref: string, where: string): ImageReference {
  let parsed: ImageReference;
  try {
    parsed = parseReference(ref, { field: 'archive' });
  } catch (e) {
    throw new InvalidArgumentError('archive', `${where} names '${ref}', which is not a valid image reference`, {
      cause: e,
    });
  }
  if (parsed.digest !== undefined)
    throw new InvalidArgumentError('archive', `${where} names '${ref}', a digest reference; only tags can be loaded`);
  return parsed;
}
