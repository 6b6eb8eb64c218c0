/**
 * The space reserve: a file of {@link RESERVE_BYTES} at `<root>/reserve`, made when an engine
 * opens its root while there is space, and deleted when a removal cannot write what it has to
 * (a refs file, an event) because the file system is full. A removal therefore always completes
 * on a root that a container, a pull or another program filled: it releases the reserve, writes,
 * and frees what it removes; the reserve is made again once there is space (the end of that
 * removal, or the next engine on the root).
 *
 * Reads never need it: they never write (see the container manager's exit recording).
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { createFileExclusiveSync } from './atomic.js';
import { isErrno, isNoSpace } from './fs-error.js';

/** Size of the reserve: room for many records, refs files and events. */
export const RESERVE_BYTES = 1 << 20;

/** The reserve file of the state root `root`. */
export function reservePath(root: string): string {
  return path.join(root, 'reserve');
}

/**
 * Makes the reserve of `root` unless it exists; best effort (a full disk leaves it absent).
 *
 * @returns whether the reserve is there afterwards.
 */
export function ensureReserve(root: string): boolean {
  const file = reservePath(root);
  if (fs.existsSync(file)) return true;
  try {
    createFileExclusiveSync(file, Buffer.alloc(RESERVE_BYTES), { fsync: false, mode: 0o600 });
    return true;
  } catch {
    // No space (or no root yet): a later removal or engine makes it.
    return false;
  }
}

/**
 * Deletes the reserve of `root`, giving its space back to the file system.
 *
 * @returns whether there was one to delete.
 */
export function releaseReserve(root: string): boolean {
  try {
    fs.unlinkSync(reservePath(root));
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false;
    throw e;
  }
}

/** Below this share of its size free, a file system counts as nearly full (ext4 keeps 5 % for root). */
export const LOW_SPACE_SHARE = 0.05;

/**
 * Whether the file system holding `root` is nearly full: less than {@link LOW_SPACE_SHARE} of its
 * size or {@link RESERVE_BYTES} free (or it cannot be asked). A removal then frees its space before
 * it returns (someone is likely waiting for it), and remakes the reserve.
 */
export function spaceIsLow(root: string): boolean {
  try {
    const s = fs.statfsSync(root);
    return s.bavail < s.blocks * LOW_SPACE_SHARE || s.bavail * s.bsize < RESERVE_BYTES;
  } catch {
    // Cannot be asked: counted as low, as documented (the removal then frees at once).
    return true;
  }
}

/**
 * Runs `fn`, a step of a removal that must not fail on a full disk; it must be safe to run
 * again after it failed. When it fails with no space, the reserve of `root` is released and
 * `fn` runs once more; its error then is thrown as is. The reserve is made again afterwards
 * when there is space for it.
 */
export async function withReserve<T>(root: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!isNoSpace(e) || !releaseReserve(root)) throw e;
  }
  try {
    return await fn();
  } finally {
    ensureReserve(root);
  }
}
