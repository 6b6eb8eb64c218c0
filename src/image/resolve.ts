/**
 * Finding a stored image by what a user typed: a full id, a reference, or a unique id prefix.
 *
 * @module
 */
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { ImageRecord, ImageRecords } from './image-records.js';
import { parseAnyReference, type ImageReference } from './reference.js';

/** The error for an image `ref` that is not stored here. */
export function imageNotFound(ref: string): NotFoundError {
  return new NotFoundError('image', ref, `image '${ref}' not found; import or pull it first`);
}

/** Finds an image of `records` as `docker inspect` does: full id, reference, then unique id prefix. */
export function resolveImage(records: ImageRecords, input: string): { id: string; named: ImageReference | undefined } {
  if (typeof input !== 'string' || input === '')
    throw new InvalidArgumentError('reference', 'expected an image reference or id');
  const any = parseAnyReference(input);
  if (any.kind === 'id') {
    if (records.get(any.id) === undefined) throw imageNotFound(input);
    return { id: any.id, named: undefined };
  }
  const id = records.refs()[any.ref.toString()];
  if (id !== undefined && records.get(id) !== undefined) return { id, named: any.ref };
  const m = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(input);
  if (m) {
    const matches = records.list().filter((r) => r.id.startsWith(`sha256:${m[1]}`));
    if (matches.length === 1) return { id: (matches[0] as ImageRecord).id, named: undefined };
    if (matches.length > 1)
      throw new InvalidArgumentError('reference', `'${input}' matches ${matches.length} images; give more of the id`);
  }
  throw imageNotFound(input);
}
