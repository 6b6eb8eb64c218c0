/**
 * Validation of `Image.build`'s options, before anything is read or written.
 *
 * @module
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';
import { parseReference } from '../reference.js';
import { stopShape } from '../../container/call-stop.js';
import type { CheckedBuildOptions } from './run.js';
import type { BuildOptions } from './types.js';

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The schema of {@link BuildOptions} (without `engine`, which the public handle takes). */
export const buildOptionsSchema = z.strictObject({
  context: z.union([
    z.string().min(1),
    z.instanceof(Readable),
    z.record(z.string().min(1), z.union([z.string(), z.instanceof(Buffer)])),
  ]),
  dockerfile: z.string().min(1).optional(),
  tag: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  buildArgs: z.record(z.string().regex(ARG_NAME, 'not a valid ARG name'), z.string()).optional(),
  target: z.string().min(1).optional(),
  noCache: z.boolean().optional(),
  labels: z.record(z.string().min(1), z.string()).optional(),
  platform: z.string().min(1).optional(),
  network: z
    .string()
    .regex(/^(none|host|default|[a-zA-Z0-9][a-zA-Z0-9_.-]*)$/, 'expected none, host or a network name')
    .optional(),
  secrets: z.record(z.string().min(1), z.union([z.string(), z.instanceof(Buffer)])).optional(),
  ...stopShape,
});

/**
 * Checks `Image.build`'s options: tags are valid references without digests, the platform is the
 * engine's own (RUN steps cannot run another architecture).
 *
 * @throws InvalidArgumentError naming the field.
 */
export function checkBuildOptions(o: z.output<typeof buildOptionsSchema>, hostPlatform: string): CheckedBuildOptions {
  const tags = o.tag === undefined ? [] : Array.isArray(o.tag) ? o.tag : [o.tag];
  for (const t of tags) {
    const ref = parseReference(t, { field: 'tag' });
    if (ref.digest !== undefined)
      throw new InvalidArgumentError('tag', `'${t}' has a digest; a tag cannot point at a digest`);
  }
  if (o.platform !== undefined && o.platform !== hostPlatform && !hostPlatform.startsWith(`${o.platform}/`))
    throw new InvalidArgumentError(
      'platform',
      `cannot build for ${o.platform}: RUN steps run on this machine's platform (${hostPlatform}) only`,
    );
  const { tag: _tag, signal: _signal, timeout: _timeout, ...rest } = o;
  return { ...rest, tags, ...(o.network === 'default' ? { network: 'none' } : {}) } as CheckedBuildOptions;
}

export type { BuildOptions };
