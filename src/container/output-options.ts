/**
 * `maxOutput` and `keep` of `Container.create` (and `run`): the output cap of the container's log,
 * named as `exec`'s. The rule the log writers follow is `runtime/log-cap.ts`.
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';

/** The fields of {@link OutputCapOptions} in the create options' schema. */
export const outputCapShape = {
  maxOutput: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  keep: z.enum(['head', 'tail']).optional(),
};

/** The output cap of a container's log, for untrusted programs that print without end. */
export interface OutputCapOptions {
  /**
   * Keep at most about this many bytes of each of stdout and stderr in the container's log, per
   * run (the program is never slowed: what is not kept is read and dropped). Once the run ended,
   * `inspect().state.outputTruncated` says which stream was cut. The streams of `attach()` are not
   * capped. Default: no cap (the log's rotation, `log`, still bounds it).
   */
  maxOutput?: number;
  /**
   * Which bytes `maxOutput` keeps: the first `maxOutput` of each stream (`head`, default), or its
   * last — at least `maxOutput` bytes of each stream, at most `3 × maxOutput + 192 KiB` (`tail`:
   * the log is rotated by this cap in at most 3 files, and `log` may not be given with it).
   */
  keep?: 'head' | 'tail';
}

/** Refuses what the cap cannot be combined with: `log` rotation with a `tail` cap (which rotates by its own rule). */
export function checkOutputCap(o: OutputCapOptions & { log?: unknown }): void {
  if (o.keep === 'tail' && o.maxOutput !== undefined && o.log !== undefined)
    throw new InvalidArgumentError(
      'log',
      "cannot be combined with keep: 'tail' and maxOutput (the log is then rotated by the output cap, in at most 3 files)",
    );
}
