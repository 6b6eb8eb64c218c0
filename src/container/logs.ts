/**
 * Reading a container's output log (see `runtime/log-format.ts`): all of it as text, or line by
 * line with stream and time, optionally following new output until the container stops.
 *
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { decodeRecords, type LogRecord, type LogStream } from '../runtime/log-format.js';

/** One line of output. */
export interface LogLine {
  /** The stream it was written to. */
  stream: LogStream;
  /** The line's text, with its trailing newline (absent on a last, unterminated line). */
  text: string;
  /** When its first byte arrived. */
  time: Date;
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
}

const toMs = (t: Date | number | string): number => (t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t));

/** Splits records into lines per stream, keeping the arrival order of the lines' first bytes. */
export class LineSplitter {
  readonly #partial = new Map<LogStream, { text: string; time: bigint }>();

  /** Feeds records; returns the lines they complete. */
  push(records: LogRecord[]): Array<{ stream: LogStream; text: string; timeNs: bigint }> {
    const out: Array<{ stream: LogStream; text: string; timeNs: bigint }> = [];
    for (const r of records) {
      let text = r.data.toString('utf8');
      let pending = this.#partial.get(r.stream);
      for (;;) {
        const nl = text.indexOf('\n');
        if (nl < 0) break;
        out.push({ stream: r.stream, text: (pending?.text ?? '') + text.slice(0, nl + 1), timeNs: pending?.time ?? r.timeNs });
        pending = undefined;
        text = text.slice(nl + 1);
      }
      if (text) this.#partial.set(r.stream, { text: (pending?.text ?? '') + text, time: pending?.time ?? r.timeNs });
      else this.#partial.delete(r.stream);
    }
    return out;
  }

  /** The unterminated last lines, at end of output. */
  flush(): Array<{ stream: LogStream; text: string; timeNs: bigint }> {
    const out = [...this.#partial.entries()].map(([stream, p]) => ({ stream, text: p.text, timeNs: p.time }));
    this.#partial.clear();
    return out.sort((a, b) => (a.timeNs < b.timeNs ? -1 : 1));
  }
}

/**
 * Reads the log at `path` as lines. With `follow`, polls for new output until `isRunning()`
 * turns false and the file is drained.
 */
export async function* readLogLines(path: string, options: LogsOptions, isRunning: () => Promise<boolean>): AsyncGenerator<LogLine> {
  const since = options.since !== undefined ? toMs(options.since) : -Infinity;
  const until = options.until !== undefined ? toMs(options.until) : Infinity;
  const want = (s: LogStream) => (s === 'stdout' ? options.stdout !== false : options.stderr !== false);
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
  } catch {
    if (!options.follow) return;
  }
  const splitter = new LineSplitter();
  let buf = Buffer.alloc(0);
  let pos = 0;
  const readMore = async (): Promise<Array<{ stream: LogStream; text: string; timeNs: bigint }>> => {
    fh ??= await open(path, 'r').catch(() => undefined);
    if (!fh) return [];
    const lines: Array<{ stream: LogStream; text: string; timeNs: bigint }> = [];
    for (;;) {
      const chunk = Buffer.allocUnsafe(256 * 1024);
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      buf = buf.length ? Buffer.concat([buf, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const { records, consumed } = decodeRecords(buf);
      buf = buf.subarray(consumed);
      lines.push(...splitter.push(records));
    }
    return lines;
  };
  const emit = (l: { stream: LogStream; text: string; timeNs: bigint }): LogLine | undefined => {
    const ms = Number(l.timeNs / 1_000_000n);
    if (!want(l.stream) || ms < since || ms >= until) return undefined;
    return { stream: l.stream, text: l.text, time: new Date(ms) };
  };
  try {
    let first = await readMore();
    let running = options.follow ? await isRunning() : false;
    if (!running) first = [...first, ...(await readMore()), ...splitter.flush()];
    let initial = first.map(emit).filter((l): l is LogLine => l !== undefined);
    if (options.tail !== undefined && options.tail >= 0) initial = options.tail === 0 ? [] : initial.slice(-options.tail);
    yield* initial;
    const waiter = new ChangeWaiter(path);
    try {
      while (running) {
        await waiter.wait(FOLLOW_POLL_MS);
        running = await isRunning();
        const more = await readMore();
        if (!running) more.push(...(await readMore()), ...splitter.flush());
        for (const l of more) {
          const line = emit(l);
          if (line) yield line;
        }
      }
    } finally {
      waiter.close();
    }
  } finally {
    await fh?.close();
  }
}

/**
 * Wakes a follower when a file changes (inotify through `fs.watch`), or after `ms` at the
 * latest: new output is seen at once, and the running check still happens regularly.
 */
class ChangeWaiter {
  #watcher: FSWatcher | undefined;
  #wake: (() => void) | undefined;
  #changed = false;

  constructor(path: string) {
    try {
      this.#watcher = watch(path, { persistent: false }, () => {
        this.#changed = true;
        this.#wake?.();
      });
      this.#watcher.on('error', () => undefined);
    } catch {
      // No such file yet, or no inotify: plain polling.
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

  close(): void {
    this.#watcher?.close();
  }
}

/** How often a follower checks whether the container still runs when no output arrives. */
const FOLLOW_POLL_MS = 25;

/**
 * Follows the raw records of the log at `path` from byte offset `from` (default: its current
 * end), until `isRunning()` turns false and the log is drained, or `signal` aborts. New
 * records are delivered as soon as they are written.
 */
export async function* followRecords(
  path: string, options: { from?: number; signal?: AbortSignal }, isRunning: () => Promise<boolean>,
): AsyncGenerator<LogRecord> {
  const waiter = new ChangeWaiter(path);
  let fh: FileHandle | undefined;
  try {
    let pos = options.from ?? (await stat(path).then((s) => s.size, () => 0));
    let buf = Buffer.alloc(0);
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const readMore = async (): Promise<LogRecord[]> => {
      fh ??= await open(path, 'r').catch(() => undefined);
      if (!fh) return [];
      const out: LogRecord[] = [];
      for (;;) {
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
        if (bytesRead === 0) return out;
        pos += bytesRead;
        buf = Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
        const { records, consumed } = decodeRecords(buf);
        // Copies: the records point into `buf`, which the next read replaces.
        out.push(...records.map((r) => ({ ...r, data: Buffer.from(r.data) })));
        buf = buf.subarray(consumed);
      }
    };
    for (;;) {
      if (options.signal?.aborted) return;
      const running = await isRunning();
      yield* await readMore();
      if (!running) {
        yield* await readMore();
        return;
      }
      await waiter.wait(FOLLOW_POLL_MS, options.signal);
    }
  } finally {
    waiter.close();
    await fh?.close();
  }
}

/** Formats lines as `docker logs` prints them. */
export function linesToText(lines: LogLine[], timestamps: boolean): string {
  return lines.map((l) => (timestamps ? `${l.time.toISOString()} ${l.text}` : l.text)).join('');
}
