/**
 * What `docker import` and `docker tag` take: the reference to tag with, the `changes` of an
 * import, and the import source (a tar file, a directory, a stream or bytes).
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { applyChanges } from './changes.js';
import { DEFAULT_PATH_ENV, type OciContainerConfig } from './image-config.js';
import type { LayerSource } from './layer-unpack.js';
import { parseReference, type ImageReference } from './reference.js';
import { packDirectory } from './tar-writer.js';
import type { ImportOptions, ImportSource } from './types.js';

/** Parses a reference to tag with (no digest allowed). */
export function taggable(ref: string): ImageReference {
  const parsed = parseReference(ref, { field: 'ref' });
  if (parsed.digest !== undefined)
    throw new InvalidArgumentError('ref', `'${ref}' has a digest; a tag cannot point at a digest reference`);
  return parsed;
}

/**
 * Checks import options without side effects: the reference to tag with, and the `changes`
 * applied to the default config (`PATH` set, as Podman does).
 *
 * @throws InvalidArgumentError naming `ref` or `changes`.
 */
export function checkImportOptions(options: ImportOptions): {
  ref: ImageReference | undefined;
  runConfig: OciContainerConfig;
} {
  const ref = options.ref === undefined ? undefined : taggable(options.ref);
  const changes =
    options.changes === undefined ? [] : Array.isArray(options.changes) ? options.changes : [options.changes];
  return { ref, runConfig: applyChanges({ Env: [DEFAULT_PATH_ENV] }, changes) };
}

/** Opens an import source; a directory is streamed as a tar of its content. */
export async function openSource(source: ImportSource): Promise<{ stream: LayerSource; name: string }> {
  if (typeof source !== 'string') return { stream: source as LayerSource, name: '-' };
  const st = await stat(source).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError('path', source, `'${source}' does not exist; give a tar file or a directory`, {
        cause: e,
      });
    throw e;
  });
  if (st.isDirectory()) return { stream: packDirectory(source), name: source };
  return { stream: createReadStream(source, { highWaterMark: 1 << 20 }), name: source };
}
