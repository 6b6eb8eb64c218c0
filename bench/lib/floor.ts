/**
 * The floor every container start is measured against: namespaces only, no rootfs, no engine.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';

/** The floor's command line, for the tables. */
export const UNSHARE_FLOOR = 'unshare --pid --fork --mount --uts --ipc --net --mount-proc true';

/**
 * Runs {@link UNSHARE_FLOOR} once (util-linux's `unshare`): a fresh PID, mount, UTS, IPC and
 * network namespace around `true`, with its own /proc.
 *
 * @example
 * ```ts
 * const floor = await timeIt(unshareTrue, 50);
 * ```
 */
export function unshareTrue(): void {
  execFileSync('unshare', UNSHARE_FLOOR.split(' ').slice(1));
}
