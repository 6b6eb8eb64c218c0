/**
 * What `docker rmi` does with an image, decided from the facts alone (no I/O), following
 * Docker's `ImageDelete`:
 *
 * | removing by | situation | result |
 * |---|---|---|
 * | reference | other references remain | untag only |
 * | reference | last reference, no container uses the image | untag, delete the image |
 * | reference | last reference, a container uses it | `IN_USE` conflict; with `force`: untag only (data kept) |
 * | id | no container, references in one repository at most | untag all, delete |
 * | id | references in several repositories | `CONFLICT` unless `force`: then untag all, delete |
 * | id | a container uses it | `IN_USE` conflict; with `force`: untag all, data kept |
 *
 * Docker would delete the image record of a stopped container's image under `force` and keep
 * its layers through reference counts; berth's containers use the layer directories directly,
 * so a forced removal of an image in use leaves it dangling until no container needs it.
 *
 * @module
 */
import { ConflictError } from '../errors.js';
import { parseReference, type ImageReference } from './reference.js';

/** The facts {@link planRemoval} decides from. */
export interface RemovalFacts {
  /** The image's id. */
  id: string;
  /** What the caller passed (for messages). */
  input: string;
  /** The reference the image was found by; undefined when found by id or id prefix. */
  named: ImageReference | undefined;
  /** The whole reference index (canonical reference → image id). */
  refs: Readonly<Record<string, string>>;
  /** Containers that use the image. */
  users: readonly string[];
  /** `docker rmi -f`. */
  force: boolean;
}

/** What to do: references to remove, and whether to delete the image itself. */
export interface RemovalPlan {
  /** Canonical references to remove. */
  untag: string[];
  /** Delete the image record and the layers nothing else uses. */
  deleteImage: boolean;
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

/**
 * Docker's `isSingleReference`: one tag (plus digests of the same repository), or digests of
 * one repository only.
 */
export function isSingleReference(refs: readonly ImageReference[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  let single: ImageReference | undefined;
  const canonical = new Set<string>();
  for (const r of refs) {
    if (r.digest !== undefined) canonical.add(r.name);
    else if (single === undefined) single = r;
    else return false;
  }
  single ??= refs[0] as ImageReference;
  return canonical.size === 1 && canonical.has(single.name);
}

/**
 * Decides a removal.
 *
 * @throws ConflictError `IN_USE` when a container uses the image and `force` is not set;
 *   `CONFLICT` when an id with references in several repositories is removed without `force`.
 */
export function planRemoval(f: RemovalFacts): RemovalPlan {
  const keys = Object.keys(f.refs)
    .filter((k) => f.refs[k] === f.id)
    .sort();
  const parsed = keys.map((k) => parseReference(k, { defaultTag: false }));
  const user = f.users[0];
  const key = f.named?.toString();
  if (f.named !== undefined && key !== undefined && f.refs[key] === f.id) {
    if (!f.force && user !== undefined && isSingleReference(parsed)) {
      throw new ConflictError(
        'IN_USE',
        `unable to remove repository reference '${f.named.familiar}': container ${short(user)} ` +
          `is using its image ${short(f.id)}; remove the container first, or force`,
      );
    }
    const untag = [key];
    let remaining = keys.filter((k) => k !== key);
    const rest = remaining.map((k) => parseReference(k, { defaultTag: false }));
    if (
      f.named.digest === undefined &&
      rest.length > 0 &&
      rest.every((r) => r.digest !== undefined && r.name === f.named?.name)
    ) {
      untag.push(...remaining);
      remaining = [];
    }
    return { untag, deleteImage: remaining.length === 0 && user === undefined };
  }
  if (user !== undefined && !f.force) {
    throw new ConflictError(
      'IN_USE',
      `unable to delete image ${short(f.id)}: container ${short(user)} is using it; remove the container first, or force`,
    );
  }
  if (parsed.length > 0 && !isSingleReference(parsed) && !f.force) {
    throw new ConflictError(
      'CONFLICT',
      `unable to delete image ${short(f.id)}: it is referenced in several repositories ` +
        `(${parsed.map((r) => r.familiar).join(', ')}); remove them by name, or force`,
    );
  }
  return { untag: keys, deleteImage: user === undefined };
}
