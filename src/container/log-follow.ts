/**
 * Following a container's output log: waking when it changes, and the raw records as they are
 * written, across rotations, until the container stops.
 *
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { LogRecord } from '../runtime/log-format.js';
import { fsLogIO, logLocation, LogCursor, openLogFiles, type LogLocation, type LogPosition } from './log-files.js';

/** How often a follower checks whether the container still runs when no output arrives. */
export const FOLLOW_POLL_MS = 25;

/**
 * Wakes a follower when a log changes (inotify on its directory through `fs.watch`, so that a
 * rotation's new file is seen too), or after `ms` at the latest: new output is seen at once, and
 * the running check still happens regularly.
 */
export class ChangeWaiter {
  #watcher: FSWatcher | undefined;
  #wake: (() => void) | undefined;
  #changed = false;

  /** A waiter on the log whose current file is `path`. */
  constructor(path: string) {
    const base = basename(path);
    try {
      this.#watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
        if (name !== null && !String(name).startsWith(base)) return;
        this.#changed = true;
        this.#wake?.();
      });
      // A watch that breaks (its directory removed, inotify limits): each wait still ends at its timer (polling).
      this.#watcher.on('error', () => undefined);
    } catch {
      // No such directory or no inotify: plain polling.
    }
  }

  /** Resolves at the next change (or at once if one happened since the last call), or after `ms`. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#changed || signal?.aborted) {
      this.#changed = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#wake = undefined;
        this.#changed = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  /** Stops watching. */
  close(): void {
    this.#watcher?.close();
  }
}

/**
 * Follows the raw records of a log from `from` (`'start'`: the oldest kept file's start;
 * `'end'`, the default: the current file's end), across rotations, until `isRunning()` turns
 * false and the log is drained, or `signal` aborts. New records are delivered as soon as they
 * are written, each once, in order (see {@link LogCursor} for a follower that falls behind: the
 * `lost` marker is a boundary record, left out here with the others).
 */
export async function* followRecords(
  loc: LogLocation | string,
  options: { from?: 'start' | 'end' | LogPosition; signal?: AbortSignal },
  isRunning: () => Promise<boolean>,
): AsyncGenerator<LogRecord> {
  const where = logLocation(loc);
  const io = where.io ?? fsLogIO;
  const files = await openLogFiles(where, io);
  const from = options.from ?? 'end';
  // A position taken earlier: that file, wherever rotation has moved it; the oldest kept one when it is gone.
  const at = typeof from === 'object' ? files.findIndex((f) => f.ino === from.ino) : -1;
  const first =
    typeof from === 'object' ? files.splice(Math.max(0, at), 1)[0] : from === 'start' ? files.shift() : files.pop();
  await Promise.all(files.map((f) => f.close()));
  const pos = !first || from === 'start' ? 0 : typeof from === 'object' ? (at >= 0 ? from.pos : 0) : await first.size();
  const cursor = new LogCursor(where, io, first, pos);
  const waiter = new ChangeWaiter(where.path);
  try {
    for (;;) {
      if (options.signal?.aborted) return;
      const running = await isRunning();
      // Copies: the records point into a buffer the next read replaces.
      const copy = (rs: LogRecord[]) =>
        rs.filter((r) => r.boundary === undefined).map((r) => ({ ...r, data: Buffer.from(r.data) }));
      yield* copy(await cursor.read());
      if (!running) {
        yield* copy(await cursor.read());
        return;
      }
      await waiter.wait(FOLLOW_POLL_MS, options.signal);
    }
  } finally {
    waiter.close();
    await cursor.close();
  }
}
