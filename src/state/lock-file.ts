/**
 * One process's hold on a lock file: `flock(2)` taken without ever blocking the event loop.
 *
 * `flock` blocks the calling thread, and in Node that is the thread running every callback. So
 * the lock is only ever requested with `LOCK_NB`; while another process holds it we sleep on a
 * timer (1 ms, doubling every other attempt up to {@link MAX_BACKOFF_MS}, with jitter) and try again. Two other
 * designs were rejected:
 *
 * - a blocking `flock` on the main thread is only safe when every holder is known to be brief,
 *   which a library cannot promise (a pull may hold a lock for seconds);
 * - a blocking `flock` on libuv's thread pool (koffi's `.async`) parks one of its four threads
 *   per waiter; four waiters starve every `fs/promises` call in the process, including the ones
 *   the current holder may need to finish, which can deadlock across processes.
 *
 * Polling alone is unfair: a process that releases and at once re-acquires (a loop of updates,
 * or a queue of callers in one process) wins nearly every time, because its waiters only look
 * every few milliseconds; measured with 4 processes × 200 updates of one record, some waited
 * 1.3 s. So waiters leave a mark: after each failed attempt they set the lock file's mtime
 * (`futimes`). A holder that finds the mtime changed when it releases knows someone waits, and
 * stays away from that lock for {@link YIELD_MS} (longer than a waiter's longest sleep), which
 * hands the lock over. An uncontended lock pays one `fstat` for this.
 *
 * Lock files may be deleted, but only by the holder of the exclusive lock (see
 * {@link unlinkLockFile}). Every acquisition therefore checks, once it holds the lock, that the
 * descriptor still refers to the file at the path (same device and inode); if not, the file was
 * replaced while it waited, and it opens the new one and tries again. Without that check, a
 * waiter on a deleted file and a locker of its replacement would both "hold" the lock.
 *
 * Descriptors are opened close-on-exec, and released with an explicit `LOCK_UN` before `close`,
 * so a forked child that inherited the descriptor cannot keep the lock alive.
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_EX, LOCK_SH, LOCK_UN, flock, tryFlock } from '../kernel/flock.js';
import { TimeoutError } from '../errors.js';
import { fsError, isErrno } from './fs-error.js';

/** The longest sleep between two attempts on a contended lock, in milliseconds (before jitter). */
export const MAX_BACKOFF_MS = 4;

/** How long a process that released a lock others wait for stays away from it, in milliseconds. */
export const YIELD_MS = Math.ceil(MAX_BACKOFF_MS * 1.5) + 2;

/** A lock held through `fd`; `stamp` is the lock file's mtime when it was acquired. */
export interface HeldFile {
  /** The locked descriptor. */
  readonly fd: number;
  /** The lock file's mtime (ms) when the lock was granted; waiters change it. */
  readonly stamp: number;
}

/** Per lock path: until when (ms since epoch) this process lets waiters go first. */
const yieldUntil = new Map<string, number>();

/** Milliseconds this process should wait before trying `file` again, to let other waiters in. */
export function politeDelay(file: string): number {
  const until = yieldUntil.get(file);
  if (until === undefined) return 0;
  const left = until - Date.now();
  if (left <= 0) yieldUntil.delete(file);
  return Math.max(0, left);
}

/** Marks the lock file as wanted (see the module notes); best effort. */
function markWaiting(fd: number): void {
  try {
    const t = Date.now() / 1000 + Math.random() / 1000;
    fs.futimesSync(fd, t, t);
  } catch {
    // not ours to touch (another user's lock file): waiters are then just not announced
  }
}

function openLockFile(file: string): number {
  const flags = fs.constants.O_RDONLY | fs.constants.O_CREAT;
  try {
    return fs.openSync(file, flags, 0o644);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw fsError(e, 'open', file);
  }
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return fs.openSync(file, flags, 0o644);
  } catch (e) {
    throw fsError(e, 'open', file);
  }
}

/** The held file's state when `fd` is still the file at `file` (not unlinked or replaced). */
function current(fd: number, file: string): HeldFile | undefined {
  const held = fs.fstatSync(fd);
  const now = fs.statSync(file, { throwIfNoEntry: false });
  return now !== undefined && now.ino === held.ino && now.dev === held.dev ? { fd, stamp: held.mtimeMs } : undefined;
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // the descriptor is gone either way
  }
}

/**
 * Tries once to lock `file` (creating it and its directory when missing) without waiting.
 *
 * @returns the locked descriptor, or undefined when another process holds a conflicting lock.
 */
export function tryLockFile(file: string, shared: boolean): HeldFile | undefined {
  const op = shared ? LOCK_SH : LOCK_EX;
  for (;;) {
    const fd = openLockFile(file);
    try {
      if (!tryFlock(fd, op)) {
        closeQuietly(fd);
        return undefined;
      }
      const held = current(fd, file);
      if (held !== undefined) return held;
    } catch (e) {
      closeQuietly(fd);
      throw fsError(e, 'flock', file);
    }
    closeQuietly(fd); // replaced while we locked it: start over on the new file
  }
}

/** Options of {@link lockFile}. */
export interface LockFileOptions {
  /** Stops waiting; the promise rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Absolute time (ms since epoch) after which waiting fails with a {@link TimeoutError}. */
  deadline?: number | undefined;
  /** Do not try before this many milliseconds have passed (see {@link politeDelay}). */
  delay?: number | undefined;
}

function backoff(attempt: number): number {
  const base = Math.min(2 ** (attempt >> 1), MAX_BACKOFF_MS);
  return Math.max(1, Math.round(base * (0.5 + Math.random())));
}

/**
 * Locks `file`, waiting (on timers, never on the thread) while another process holds it.
 *
 * @returns the locked descriptor; give it back with {@link unlockFile}.
 * @throws TimeoutError after `deadline`; `signal.reason` when aborted; KernelError when the
 * lock file cannot be opened.
 */
export async function lockFile(file: string, shared: boolean, options: LockFileOptions = {}): Promise<HeldFile> {
  const { signal, deadline } = options;
  const op = shared ? LOCK_SH : LOCK_EX;
  let fd = -1;
  try {
    if (options.delay !== undefined && options.delay > 0) await pause(options.delay, deadline, signal);
    fd = openLockFile(file);
    for (let attempt = 0; ;) {
      if (signal?.aborted) throw signal.reason;
      if (tryFlock(fd, op)) {
        const held = current(fd, file);
        if (held !== undefined) return held;
        closeQuietly(fd);
        fd = -1;
        fd = openLockFile(file);
        continue;
      }
      markWaiting(fd);
      if (deadline !== undefined && deadline <= Date.now()) {
        throw new TimeoutError(
          `timed out waiting for lock ${file}: another process holds it; retry later or raise the timeout`,
        );
      }
      await pause(backoff(attempt++), deadline, signal);
    }
  } catch (e) {
    if (fd >= 0) closeQuietly(fd);
    if (signal?.aborted && e === signal.reason) throw e;
    throw fsError(e, 'flock', file);
  }
}

async function pause(ms: number, deadline: number | undefined, signal: AbortSignal | undefined): Promise<void> {
  const left = deadline === undefined ? ms : Math.max(0, Math.min(ms, deadline - Date.now()));
  try {
    await sleep(left, undefined, signal ? { signal } : undefined);
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}

/**
 * Releases a lock taken by {@link lockFile} or {@link tryLockFile} and closes its descriptor.
 * If another process marked the file while we held it, this process yields the lock for a while.
 */
export function unlockFile(file: string, held: HeldFile): void {
  try {
    if (fs.fstatSync(held.fd).mtimeMs !== held.stamp) {
      if (yieldUntil.size > 1000) for (const f of yieldUntil.keys()) politeDelay(f); // drop expired entries
      yieldUntil.set(file, Date.now() + YIELD_MS);
    }
  } catch {
    // cannot tell: no yielding
  }
  try {
    flock(held.fd, LOCK_UN);
  } catch {
    // closing below releases the lock too, unless a forked child shares the descriptor
  }
  closeQuietly(held.fd);
}

/**
 * Deletes a lock file. Call it only while holding the exclusive lock through `fd`: processes
 * waiting on the old file notice the change when they get it, and move to the new one.
 */
export function unlinkLockFile(file: string, fd: number): void {
  if (current(fd, file) === undefined) return;
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw fsError(e, 'unlink', file);
  }
}
