/**
 * Validation of the engine's registry settings (zod), so a bad value fails when the engine is
 * made, naming the field, before any request.
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';
import type { RegistrySettings } from './types.js';

const positiveInt = z.number().int().positive();

const settingsSchema = z.object({
  insecureRegistries: z.array(z.string().min(1)).optional(),
  registryCAs: z.array(z.string().includes('-----BEGIN', { message: 'expected PEM certificates' })).optional(),
  registryDispatcher: z
    .custom<RegistrySettings['registryDispatcher']>(
      (v) => typeof v === 'object' && v !== null && typeof (v as { dispatch?: unknown }).dispatch === 'function',
      'expected an undici Dispatcher',
    )
    .optional(),
  maxConcurrentDownloads: positiveInt.optional(),
  maxConcurrentUploads: positiveInt.optional(),
  uploadChunkSize: positiveInt.optional(),
  registryRetries: z.number().int().nonnegative().optional(),
  registryRetryDelay: z.number().nonnegative().optional(),
});

/**
 * Picks and checks the registry settings out of engine options.
 *
 * @throws InvalidArgumentError naming the field.
 */
export function checkRegistrySettings(options: RegistrySettings): RegistrySettings {
  const picked = Object.fromEntries(Object.entries(options).filter(([k]) => k in settingsSchema.shape));
  const r = settingsSchema.safeParse(picked);
  if (r.success) return r.data as RegistrySettings;
  const issue = r.error.issues[0];
  throw new InvalidArgumentError(
    issue?.path.map(String).join('.') || 'options',
    issue?.message ?? 'invalid registry settings',
    { cause: r.error },
  );
}
