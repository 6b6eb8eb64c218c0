/**
 * Reading a container's output log (see `runtime/log-format.ts`): all of it as text, or line by
 * line with stream and time, optionally following new output until the container stops.
 *
 * The pieces: `log-lines.ts` (records to lines), `log-files.ts` (the files across rotations),
 * `log-tail.ts` (reading from the end) and `log-follow.ts` (new output as it comes).
 *
 * @module
 */
import type { LogStream } from '../runtime/log-format.js';
import {
  fsLogIO,
  leadingBoundary,
  logLocation,
  LogCursor,
  openLogFiles,
  streamsOf,
  type LogLocation,
} from './log-files.js';
import { LineSplitter, type SplitLine } from './log-lines.js';
import { tailWindow } from './log-tail.js';
import { ChangeWaiter, FOLLOW_POLL_MS } from './log-follow.js';
import { finishCleanup } from './cleanup.js';

export { LineSplitter } from './log-lines.js';
export { fsLogIO, logEnd, type LogFile, type LogIO, type LogLocation, type LogPosition } from './log-files.js';
export { followRecords } from './log-follow.js';

/** One line of output. */
export interface LogLine {
  /** The stream it was written to. */
  stream: LogStream;
  /** The line's text, with its trailing newline (absent on a last, unterminated line). */
  text: string;
  /** When its first byte arrived. */
  time: Date;
  /**
   * Set on the first line after a place where output may be missing: a follower (or a long read)
   * that fell `maxFile` rotations or more behind the writer moves on to the oldest file still
   * kept, and the files rotated away before it read them are gone. Never set while it keeps up
   * (at most `maxFile − 1` rotations behind: every line then comes once, in order).
   */
  lost?: true;
}

/** Options of `container.logs()`. */
export interface LogsOptions {
  /** Keep reading new output until the container stops. */
  follow?: boolean;
  /** Only lines at or after this time (Date, ms since epoch, or ISO string). */
  since?: Date | number | string;
  /** Only lines before this time. */
  until?: Date | number | string;
  /** Only the last N lines (of what exists when reading starts). */
  tail?: number;
  /** Prefix each line of the text form with its RFC 3339 time, as `docker logs -t`. */
  timestamps?: boolean;
  /** Which streams to include. Default both. */
  stdout?: boolean;
  /** Include stderr. Default true. */
  stderr?: boolean;
  /** Ends a follow early (the lines read so far stay delivered); `logs()` then rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** `logs()` ends a follow after this many milliseconds and rejects with `TIMEOUT`. */
  timeout?: number;
}

const toMs = (t: Date | number | string): number =>
  t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t);

/** About how much a reader reads before it hands the lines on. */
const READ_LIMIT = 1024 * 1024;

/**
 * Reads a container's log as lines, across its rotated files (oldest first). With `tail`, only
 * the end is read (see {@link tailWindow}). With `follow`, keeps reading new output, across
 * rotations, until `isRunning()` turns false and the log is drained.
 */
export async function* readLogLines(
  loc: LogLocation | string,
  options: LogsOptions,
  isRunning: () => Promise<boolean>,
): AsyncGenerator<LogLine> {
  const where = logLocation(loc);
  const io = where.io ?? fsLogIO;
  const since = options.since !== undefined ? toMs(options.since) : -Infinity;
  const until = options.until !== undefined ? toMs(options.until) : Infinity;
  const want = (s: LogStream) => (s === 'stdout' ? options.stdout !== false : options.stderr !== false);
  // A gap is said on the next line shown, also when the line after it is filtered out.
  let lost = false;
  const emit = (l: SplitLine): LogLine | undefined => {
    const ms = Number(l.timeNs / 1_000_000n);
    lost ||= !!l.lost;
    if (!want(l.stream) || ms < since || ms >= until) return undefined;
    const line: LogLine = { stream: l.stream, text: l.text, time: new Date(ms), ...(lost ? { lost: true } : {}) };
    lost = false;
    return line;
  };
  const visible = (lines: SplitLine[]) => lines.map(emit).filter((l): l is LogLine => l !== undefined);
  const files = await openLogFiles(where, io);
  const newest = files.pop();
  const cursor = new LogCursor(where, io, newest, 0);
  let failure: { error: unknown } | undefined;
  try {
    let running = options.follow ? await isRunning() : false;
    let splitter: LineSplitter;
    const tail = options.tail !== undefined && options.tail >= 0 ? options.tail : undefined;
    if (tail !== undefined) {
      const all = newest ? [...files, newest] : files;
      // With tail 0 the window only finds where the last whole record ends.
      const w = await tailWindow(all, (lines) => visible(lines).length >= tail);
      cursor.pos = w.top;
      splitter = w.splitter;
      await Promise.all(files.map((f) => f.close()));
      files.length = 0;
      let initial = visible(w.lines);
      if (!running) {
        // Anything written after the window's end, and the unterminated last lines.
        for (const l of visible([...splitter.push(await cursor.read()), ...splitter.flush()])) initial.push(l);
      }
      initial = tail === 0 ? [] : initial.slice(-tail);
      yield* initial;
    } else {
      // Streamed: a long log is never held whole.
      const lead = files.length ? await leadingBoundary(files[0]!) : newest ? await leadingBoundary(newest) : 0;
      splitter = new LineSplitter(streamsOf(lead));
      while (files.length) {
        const f = files[0]!;
        const older = new LogCursor(where, io, f, 0);
        do yield* visible(splitter.push(await older.drain(READ_LIMIT)));
        while (older.more);
        files.shift();
        await f.close();
      }
      do yield* visible(splitter.push(await cursor.read(READ_LIMIT)));
      while (cursor.more);
      if (!running) {
        do yield* visible(splitter.push(await cursor.read(READ_LIMIT)));
        while (cursor.more);
        yield* visible(splitter.flush());
      }
    }
    if (!running) return;
    const waiter = new ChangeWaiter(where.path);
    try {
      while (running && !options.signal?.aborted) {
        await waiter.wait(FOLLOW_POLL_MS, options.signal);
        running = await isRunning();
        const more = splitter.push(await cursor.read());
        if (!running) more.push(...splitter.push(await cursor.read()), ...splitter.flush());
        for (const l of more) {
          const line = emit(l);
          if (line) yield line;
        }
      }
    } finally {
      waiter.close();
    }
  } catch (e) {
    failure = { error: e };
    throw e;
  } finally {
    // Also when the reader stops early (a generator's return): every file is closed, and a close
    // that fails is attached to the failure that ended the read, or thrown.
    const closes = [...files.map((f) => () => f.close()), () => cursor.close()];
    await finishCleanup(failure, closes, `cannot close the files of log ${where.path}`);
  }
}

/** Formats lines as `docker logs` prints them. */
export function linesToText(lines: LogLine[], timestamps: boolean): string {
  return lines.map((l) => (timestamps ? `${l.time.toISOString()} ${l.text}` : l.text)).join('');
}
