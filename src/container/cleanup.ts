/**
 * Errors of a cleanup are never dropped: they are attached to the error that made the cleanup
 * necessary ({@link attachCleanupErrors}), or thrown when nothing failed before
 * ({@link settleAll}).
 *
 * @module
 */
import { attachCleanupErrors } from '../errors.js';

/** Runs every step of a cleanup, each even when another fails; resolves with the errors, in order (empty when all went well). */
export async function cleanupErrors(steps: Array<() => unknown>): Promise<unknown[]> {
  const results = await Promise.allSettled(steps.map(async (s) => s()));
  return results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
}

/**
 * Runs every step of a cleanup (see {@link cleanupErrors}) and throws what failed: the one
 * error, or an `AggregateError` with `message` for several.
 */
export async function settleAll(steps: Array<() => unknown>, message: string): Promise<void> {
  const errors = await cleanupErrors(steps);
  if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors, message);
}

/**
 * The end of a `finally` whose body may have failed (`failure` holds its error then): runs the
 * cleanup `steps`, each even when another fails; rethrows the body's error with theirs attached,
 * or throws theirs (see {@link settleAll}) when the body did not fail.
 */
export async function finishCleanup(
  failure: { error: unknown } | undefined,
  steps: Array<() => unknown>,
  message: string,
): Promise<void> {
  if (failure) throw attachCleanupErrors(failure.error, await cleanupErrors(steps));
  await settleAll(steps, message);
}
