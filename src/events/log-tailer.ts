/**
 * Tails the event log: reads lines as other processes (or this one) append them, across
 * rotations, and hands over each complete, valid event exactly once.
 *
 * Position is a {@link LogCursor}: the log file's inode and a byte offset in it. Rotation renames
 * `events.log` to `events.log.1`, so the tailer keeps its descriptor on the old file, reads it
 * to the end once it sees another file at the path, and then moves to the next generation's
 * start: the current file, or `events.log.1` when the log was rotated twice meanwhile. A tailer
 * that falls three generations behind (more than `maxBytes` of events while its process was
 * busy) loses the generations that were deleted.
 * Appenders write under a shared lock and rotation takes the exclusive one, so once the path
 * names a new file no more bytes can land in the old one.
 *
 * Wake-ups come from `fs.watch` on the log's directory (inotify: every append from any process),
 * from {@link LogTailer.kick} (appends by this process) and from a periodic check every
 * `pollInterval` ms, for file systems where inotify says nothing (NFS, overlay lower dirs) or
 * when the watch cannot be set up. Neither the watch nor the timer keeps the process alive
 * unless `keepAlive` is set.
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BerthError } from '../errors.js';
import { fsError, isErrno } from '../state/fs-error.js';
import { asEvent, type BerthEvent } from './types.js';

/** A position in the log: the inode of a log file (0: "the file at the path, from its start") and an offset in it. */
export interface LogCursor {
  /** Inode number of the file the offset belongs to; 0 when the log did not exist. */
  ino: number;
  /** Byte offset of the next unread line. */
  offset: number;
}

/** Options of {@link LogTailer}. */
export interface LogTailerOptions {
  /** Milliseconds between two checks when no notification arrives. */
  pollInterval: number;
  /** Let the watch and the timer keep the process alive. */
  keepAlive: boolean;
  /** Receives each batch of new events, in log order. */
  onEvents(events: BerthEvent[]): void;
  /** Receives read failures; the tailer keeps trying at the next wake-up. */
  onError(error: BerthError): void;
}

const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);

function openIfExists(file: string): number | undefined {
  try {
    return fs.openSync(file, fs.constants.O_RDONLY);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

/**
 * Splits `data` into JSON lines and parses each; a line that is not a valid event (a write torn
 * by a full disk, a fragment) is skipped.
 *
 * @returns the events and the number of bytes consumed (up to the last newline).
 */
export function parseLines(data: Buffer, out: BerthEvent[]): number {
  let start = 0;
  for (let nl = data.indexOf(NEWLINE, start); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
    if (nl > start) {
      try {
        const e = asEvent(JSON.parse(data.toString('utf8', start, nl)));
        if (e !== undefined) out.push(e);
      } catch {
        // not a complete event: skip it
      }
    }
    start = nl + 1;
  }
  return start;
}

/** Follows the log from a cursor; see the module notes. */
export class LogTailer {
  readonly #file: string;
  readonly #rotated: string;
  readonly #options: LogTailerOptions;
  #cursor: LogCursor;
  #fd = -1;
  #ino = 0;
  #offset = 0;
  /** The inode of the file just read to its end, to find the one after it. */
  #finished = 0;
  #pending: Buffer = EMPTY;
  #watcher: fs.FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scheduled = false;
  #closed = false;
  readonly #buf = Buffer.allocUnsafe(64 * 1024);

  /** Creates a tailer of `file` (rotated to `file.1`) from `cursor`; nothing happens until {@link start}. */
  constructor(file: string, cursor: LogCursor, options: LogTailerOptions) {
    this.#file = file;
    this.#rotated = `${file}.1`;
    this.#cursor = cursor;
    this.#options = options;
  }

  /** Starts watching and reads whatever was appended since the cursor. */
  start(): void {
    const base = path.basename(this.#file);
    try {
      this.#watcher = fs.watch(path.dirname(this.#file), { persistent: this.#options.keepAlive }, (_event, name) => {
        if (name === null || name === base || name === `${base}.1`) this.kick();
      });
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      this.#watcher = undefined; // no inotify here: the periodic check does the work
    }
    this.#timer = setInterval(() => this.drain(), this.#options.pollInterval);
    if (!this.#options.keepAlive) this.#timer.unref();
    this.drain();
  }

  /** Schedules a read soon (in a microtask); several kicks in a row cause one read. */
  kick(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.drain();
    });
  }

  /** Reads everything new now and delivers it. Read failures go to `onError`. */
  drain(): void {
    if (this.#closed) return;
    const events: BerthEvent[] = [];
    try {
      this.#drainInto(events);
    } catch (e) {
      this.#options.onError(fsError(e, 'read', this.#file));
    }
    if (events.length > 0 && !this.#closed) this.#options.onEvents(events);
  }

  /** Stops watching and closes the file. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#closeFd();
  }

  #closeFd(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
    this.#pending = EMPTY;
  }

  #drainInto(events: BerthEvent[]): void {
    for (let hops = 0; hops < 4; hops++) {
      if (this.#fd < 0 && !this.#open()) return;
      this.#readToEnd(events);
      const now = fs.statSync(this.#file, { throwIfNoEntry: false });
      if (now !== undefined && now.ino === this.#ino) {
        if (now.size < this.#offset) {
          this.#offset = 0; // truncated by hand: start over
          this.#pending = EMPTY;
        }
        return;
      }
      // The file was rotated away: what was written to it is complete now; finish it and move on.
      this.#readToEnd(events);
      this.#closeFd();
      this.#cursor = { ino: 0, offset: 0 };
      this.#finished = this.#ino;
    }
  }

  /** Opens the cursor's file (the current one or the rotated one), else the current file from its start. */
  #open(): boolean {
    const { ino, offset } = this.#cursor;
    if (ino !== 0) {
      for (const f of [this.#file, this.#rotated]) {
        const fd = openIfExists(f);
        if (fd === undefined) continue;
        if (fs.fstatSync(fd).ino === ino) return this.#use(fd, ino, offset);
        fs.closeSync(fd);
      }
    }
    this.#cursor = { ino: 0, offset: 0 };
    const finished = this.#finished;
    this.#finished = 0;
    if (finished !== 0) {
      // After the file we finished comes the current one, unless the log was rotated twice:
      // then the generation in between is the rotated file, and it comes first.
      const fd = openIfExists(this.#rotated);
      if (fd !== undefined) {
        const ino = fs.fstatSync(fd).ino;
        if (ino !== finished) return this.#use(fd, ino, 0);
        fs.closeSync(fd);
      }
    }
    const fd = openIfExists(this.#file);
    if (fd === undefined) return false;
    return this.#use(fd, fs.fstatSync(fd).ino, 0);
  }

  #use(fd: number, ino: number, offset: number): true {
    this.#fd = fd;
    this.#ino = ino;
    this.#offset = offset;
    this.#pending = EMPTY;
    return true;
  }

  #readToEnd(events: BerthEvent[]): void {
    for (;;) {
      const n = fs.readSync(this.#fd, this.#buf, 0, this.#buf.length, this.#offset);
      if (n === 0) return;
      this.#offset += n;
      const chunk =
        this.#pending.length === 0
          ? this.#buf.subarray(0, n)
          : Buffer.concat([this.#pending, this.#buf.subarray(0, n)]);
      const used = parseLines(chunk, events);
      this.#pending = used === chunk.length ? EMPTY : Buffer.from(chunk.subarray(used));
    }
  }
}
