/**
 * `log: { maxSize, maxFile }` of `Container.create`: Docker's `--log-opt max-size=… max-file=…`,
 * parsed once at create and kept in the record as numbers (`LogLimits`).
 *
 * @module
 */
import { z } from 'zod';
import { DEFAULT_LOG_LIMITS, type LogLimits } from '../runtime/log-writer.js';
import { TAIL_LOG_FILES, type KeepPart } from '../runtime/log-cap.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses a size as Docker's `max-size`: a number of bytes, or `'10k'`, `'10m'`, `'1g'` (units of 1024, also `kb`/`KiB`…); undefined when it is not one. */
export function parseLogSize(size: string | number): number | undefined {
  if (typeof size === 'number') return Number.isSafeInteger(size) && size > 0 ? size : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(size.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** Schema of {@link LogOptions}. */
export const logOptionsSchema = z.strictObject({
  maxSize: z
    .union([z.string(), z.number()])
    .refine((s) => parseLogSize(s) !== undefined, "expected a positive size: bytes, or a number with k, m or g ('10m')")
    .optional(),
  maxFile: z.number().int().min(1).max(1000).optional(),
});

/**
 * Limits of a container's log, as Docker's `json-file` and `local` drivers take them: when the
 * file would grow past `maxSize` it is renamed `output.log.1` (and `.1` to `.2` …, the oldest
 * dropped) and a new one is started, so at most `maxFile` files are kept.
 */
export interface LogOptions {
  /** Largest size of one file: bytes, or `'10k'`, `'10m'`, `'1g'`. Default `'20m'`. */
  maxSize?: string | number;
  /** How many files are kept, the current one included (≥ 1). Default 5. */
  maxFile?: number;
}

/**
 * The record's limits from validated options (the defaults for what is not given), with the
 * output cap `cap` (create's `maxOutput` and `keep`): a `tail` cap keeps its own files.
 */
export function resolveLogLimits(
  o: LogOptions | undefined,
  cap: { maxOutput?: number | undefined; keep?: KeepPart | undefined } = {},
): LogLimits {
  const limits = {
    maxSize: o?.maxSize !== undefined ? parseLogSize(o.maxSize)! : DEFAULT_LOG_LIMITS.maxSize,
    maxFile: o?.maxFile ?? DEFAULT_LOG_LIMITS.maxFile,
  };
  if (cap.maxOutput === undefined) return limits;
  const keep = cap.keep ?? 'head';
  return { ...limits, ...(keep === 'tail' ? { maxFile: TAIL_LOG_FILES } : {}), maxOutput: cap.maxOutput, keep };
}

/** Schema of the limits kept in the record. */
export const logLimitsSchema = z.object({
  maxSize: z.number().int().positive(),
  maxFile: z.number().int().min(1),
  maxOutput: z.number().int().positive().optional(),
  keep: z.enum(['head', 'tail']).optional(),
});
