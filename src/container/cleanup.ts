/**
 * Errors of a cleanup are never dropped: they are attached to the error that made the cleanup
 * necessary ({@link attachCleanupErrors}), or thrown when nothing failed before
 * ({@link settleAll}).
 *
 * @module
 */

/**
 * Returns `first` with the errors of the cleanup that followed it attached, never dropped: as its
 * `cause` (an `AggregateError` of its former cause and them when it had one). `first` keeps its
 * type and code, so callers still see why the operation failed.
 */
export function attachCleanupErrors(first: unknown, errors: unknown[]): unknown {
  if (!errors.length) return first;
  if (!(first instanceof Error)) return new AggregateError([first, ...errors], String(first));
  const cause =
    first.cause === undefined && errors.length === 1
      ? errors[0]
      : new AggregateError(
          [...(first.cause === undefined ? [] : [first.cause]), ...errors],
          `the cleanup after "${first.message}" failed too`,
        );
  Object.defineProperty(first, 'cause', { value: cause, configurable: true, writable: true, enumerable: false });
  return first;
}

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
