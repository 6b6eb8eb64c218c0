/**
 * Names and paths for `TarExtractor` (`layer-writer.ts`): an entry's name cleaned lexically,
 * binary-string names as text or bytes for the path-taking calls, paths under a directory fd
 * (`/proc/self/fd/<fd>/<name>`, never followed), and a failed call's errno code.
 *
 * @module
 */
import { UnsafeLayerError } from '../errors.js';

/**
 * Cleans an entry name lexically: drops `.`, empty components and a leading `/`, resolves `..`.
 * Returns the path relative to the layer root (`''` for the root itself), as a binary string.
 *
 * @throws UnsafeLayerError when `..` climbs above the root of a relative name, or the name holds a
 *   NUL byte.
 */
export function cleanEntryName(name: string): string {
  if (name.includes('\0'))
    throw new UnsafeLayerError(name, `layer entry '${printable(name)}' has a NUL byte in its name`);
  const absolute = name.startsWith('/');
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.length > 0) out.pop();
    else if (!absolute) {
      throw new UnsafeLayerError(
        name,
        `layer entry '${printable(name)}' points outside the layer (its '..' climbs above the root); the layer was rejected`,
      );
    }
  }
  return out.join('/');
}

/** A binary-string name as readable text for messages. */
export function printable(binary: string): string {
  return Buffer.from(binary, 'latin1').toString('utf8');
}

/** A path under a directory fd, as bytes: `/proc/self/fd/<fd>/<name>` (the name is not followed). */
export function fdPath(fd: number, name: Buffer | string): Buffer {
  const prefix = Buffer.from(`/proc/self/fd/${fd}`);
  if (typeof name === 'string' ? name === '' : name.length === 0) return prefix;
  return Buffer.concat([prefix, Buffer.from('/'), typeof name === 'string' ? Buffer.from(name, 'latin1') : name]);
}

/** The errno code of a failed call: a kernel binding's `errnoCode` or Node's `code`. */
export function errnoOf(e: unknown): string | undefined {
  return (e as { errnoCode?: string; code?: string }).errnoCode ?? (e as NodeJS.ErrnoException).code;
}

const ASCII = /^[\x20-\x7e]*$/;

/** A binary-string name as the text a path-taking binding wants, when it round-trips (valid UTF-8); undefined otherwise. */
export function utf8(binary: string): string | undefined {
  if (ASCII.test(binary)) return binary;
  const text = Buffer.from(binary, 'latin1').toString('utf8');
  return Buffer.from(text, 'utf8').toString('latin1') === binary ? text : undefined;
}

/** {@link fdPath} as text when the name is ASCII (cheaper to build), as bytes otherwise. */
export function under(fd: number, name: string): string | Buffer {
  return ASCII.test(name) ? `/proc/self/fd/${fd}/${name}` : fdPath(fd, name);
}

/** A binary-string name as a path for the file system: text when ASCII, bytes otherwise. */
export function toFs(binary: string): string | Buffer {
  return ASCII.test(binary) ? binary : Buffer.from(binary, 'latin1');
}
