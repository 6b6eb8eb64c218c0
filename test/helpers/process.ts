/**
 * Host processes seen from a test: whether one exists, and waiting until it is gone.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Whether host process `pid` still exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once host process `pid` no longer exists (polls every 20 ms). */
export async function processGone(pid: number): Promise<void> {
  while (processAlive(pid)) await sleep(20);
}
