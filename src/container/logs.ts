/**
 * Reading a container's output log (see `runtime/log-format.ts`): all of it as text, or line by
 * line with stream and time, optionally following new output until the container stops.
 *
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import {
  decodeRecords, KIND_BOUNDARY, KIND_TRAILER, makeRecord, RECORD_HEADER, RECORD_TRAILER, type LogRecord, type LogStream,
} from '../runtime/log-format.js';
import { DEFAULT_LOG_LIMITS, rotatedPath } from '../runtime/log-writer.js';

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
  readonly #skip: Set<LogStream>;

  /** `skipFirst`: streams whose first line is dropped (it began before the bytes read). */
  constructor(skipFirst: Iterable<LogStream> = []) {
    this.#skip = new Set(skipFirst);
  }

  /** Feeds records; returns the lines they complete. */
  push(records: LogRecord[]): Array<{ stream: LogStream; text: string; timeNs: bigint }> {
    const out: Array<{ stream: LogStream; text: string; timeNs: bigint }> = [];
    for (const r of records) {
      if (r.boundary !== undefined) continue;
      let text = r.data.toString('utf8');
      let pending = this.#partial.get(r.stream);
      for (;;) {
        const nl = text.indexOf('\n');
        if (nl < 0) break;
        if (this.#skip.delete(r.stream)) {
          pending = undefined;
          text = text.slice(nl + 1);
          continue;
        }
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
    for (const s of this.#skip) this.#partial.delete(s);
    const out = [...this.#partial.entries()].map(([stream, p]) => ({ stream, text: p.text, timeNs: p.time }));
    this.#partial.clear();
    return out.sort((a, b) => (a.timeNs < b.timeNs ? -1 : 1));
  }
}

/** One open file of a log, as a reader sees it. */
export interface LogFile {
  /** Its inode number: a rotation renames files, so the name alone does not tell them apart. */
  readonly ino: number;
  /** Its current size. */
  size(): Promise<number>;
  /** Reads up to `length` bytes at `position` into `buf` at `offset`; the count read. */
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Closes it. */
  close(): Promise<void>;
}

/** How a log reader reaches the files (injectable: a test counts the bytes a tail reads). */
export interface LogIO {
  /** Opens `path` for reading; undefined when it does not exist. */
  open(path: string): Promise<LogFile | undefined>;
  /** The inode number of `path`; undefined when it does not exist. */
  ino(path: string): Promise<number | undefined>;
}

/** {@link LogIO} on the file system. */
export const fsLogIO: LogIO = {
  async open(path) {
    const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (!fh) return undefined;
    const { ino } = await fh.stat();
    return {
      ino,
      size: async () => (await fh.stat()).size,
      read: async (buf, offset, length, position) => (await fh.read(buf, offset, length, position)).bytesRead,
      close: () => fh.close(),
    };
  },
  ino: (path) => stat(path).then((s) => s.ino, () => undefined),
};

/** A place in a log: a file (by inode) and a byte offset in it. */
export interface LogPosition {
  /** The file's inode number. */
  ino: number;
  /** Byte offset. */
  pos: number;
}

/** The end of a log's current file now (for a reader that starts later); undefined when there is no log yet. */
export async function logEnd(path: string): Promise<LogPosition | undefined> {
  return stat(path).then((s) => ({ ino: s.ino, pos: s.size }), () => undefined);
}

/** Where a reader finds a container's log: its current file's path and how many files may be kept. */
export interface LogLocation {
  /** The current file (`output.log`); older ones are `output.log.1` … */
  path: string;
  /** Files kept (the record's `log.maxFile`). */
  maxFile: number;
  /** File access; default {@link fsLogIO}. */
  io?: LogIO;
}

/**
 * Opens the files of a log, oldest first. A rotation renames every file, so a scan that
 * overlapped one may have seen a file twice or under the wrong place: the current file's inode is
 * compared before and after, and the scan is made again when a rotation came in between.
 */
async function openLogFiles(loc: LogLocation, io: LogIO): Promise<LogFile[]> {
  let files: LogFile[] = [];
  for (let attempt = 0; ; attempt++) {
    const before = await io.ino(loc.path);
    const seen = new Set<number>();
    files = [];
    try {
      // The files are 0, 1, 2 … with no gap, but for the one a rotation is renaming now.
      for (let i = 0, missing = 0; i < Math.max(1, loc.maxFile) && missing < 2; i++) {
        const f = await io.open(rotatedPath(loc.path, i));
        if (!f) {
          missing++;
          continue;
        }
        missing = 0;
        if (seen.has(f.ino)) await f.close();
        else {
          seen.add(f.ino);
          files.unshift(f);
        }
      }
    } catch (e) {
      await Promise.allSettled(files.map((f) => f.close()));
      throw e;
    }
    const after = await io.ino(loc.path);
    if ((before === after && files[files.length - 1]?.ino === after) || attempt === 4) return files;
    await Promise.allSettled(files.map((f) => f.close()));
  }
}

/** Reads a file's first record, if it is a boundary record: which streams begin mid-line. */
async function leadingBoundary(f: LogFile): Promise<number> {
  const b = Buffer.alloc(RECORD_HEADER + 1);
  const n = await f.read(b, 0, b.length, 0);
  return n === b.length && b[0] === KIND_BOUNDARY ? b[RECORD_HEADER]! : 0;
}

const streamsOf = (mask: number): LogStream[] => [...(mask & 1 ? ['stdout' as const] : []), ...(mask & 2 ? ['stderr' as const] : [])];

/**
 * Reads a log forwards, from one file into the next across rotations: when the current file is
 * drained and no longer the log's current one, it was rotated, and the reader continues in the
 * file written after it (found by inode among the kept files), so no record is lost or read twice
 * unless the writer dropped files the reader had not reached yet.
 */
class LogCursor {
  #buf = Buffer.alloc(0);
  readonly #chunk = Buffer.allocUnsafe(256 * 1024);

  constructor(readonly loc: LogLocation, readonly io: LogIO, public file: LogFile | undefined, public pos: number) {}

  /** Every whole record written since the last call (crossing rotations). */
  async read(limit = Infinity): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    this.more = false;
    for (;;) {
      if (!this.file) {
        this.file = await this.io.open(this.loc.path);
        this.pos = 0;
        if (!this.file) return out;
      }
      if (!(await this.#drain(out, limit))) {
        this.more = true;
        return out;
      }
      const next = await this.#successor();
      if (!next) return out;
      await this.#drain(out, Infinity); // Written after our last read, before the rotation.
      await this.file.close();
      this.file = next;
      this.pos = 0;
      this.#buf = Buffer.alloc(0);
    }
  }

  /** Set by {@link read} and {@link drain} when they stopped at their limit, before the end. */
  more = false;

  /** The whole records of the current file from the position on (about `limit` bytes at most), without crossing to another file. */
  async drain(limit = Infinity): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    this.more = !!this.file && !(await this.#drain(out, limit));
    return out;
  }

  /** Reads on until the end (true) or `limit` bytes (false). */
  async #drain(out: LogRecord[], limit: number): Promise<boolean> {
    for (let total = 0; ; ) {
      if (total >= limit) return false;
      const n = await this.file!.read(this.#chunk, 0, this.#chunk.length, this.pos);
      if (n === 0) return true;
      total += n;
      this.pos += n;
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, this.#chunk.subarray(0, n)]) : Buffer.from(this.#chunk.subarray(0, n));
      const { records, consumed } = decodeRecords(this.#buf);
      for (const r of records) out.push(r);
      this.#buf = this.#buf.subarray(consumed);
    }
  }

  /** The file written after the current one once it has been rotated out; undefined while it is still current (or its successor is not there yet). */
  async #successor(): Promise<LogFile | undefined> {
    const cur = this.file!;
    if ((await this.io.ino(this.loc.path)) === cur.ino) return undefined;
    const max = Math.max(1, this.loc.maxFile);
    for (let attempt = 0; attempt < 3; attempt++) {
      let at = -1;
      let oldest = -1;
      const inos: Array<number | undefined> = [];
      for (let i = 0, missing = 0; i < max && missing < 2; i++) {
        inos[i] = await this.io.ino(rotatedPath(this.loc.path, i));
        missing = inos[i] === undefined ? missing + 1 : 0;
        if (inos[i] !== undefined) oldest = i;
        if (inos[i] === cur.ino) {
          at = i;
          break;
        }
      }
      // Rotated out at `at`: its successor is one newer. Dropped already: the oldest kept file
      // (what was between is lost). Nothing there: the writer is between renames.
      const want = at > 0 ? at - 1 : at === 0 ? -1 : oldest;
      if (want < 0 || inos[want] === undefined) return undefined;
      const f = await this.io.open(rotatedPath(this.loc.path, want));
      if (f && f.ino === inos[want]) return f;
      await f?.close(); // Renamed again meanwhile: look again.
    }
    return undefined;
  }

  /** Closes the current file. */
  async close(): Promise<void> {
    await this.file?.close();
    this.file = undefined;
  }
}

/** Reads records backwards from the end of one file, using each record's trailing length. */
class BackwardFile {
  #cache = Buffer.alloc(0);
  #cacheAt = 0;
  /** Records read forwards, for a file without trailers (written by an older berth): popped from the end. */
  #fallback: LogRecord[] | undefined;

  /** Where the records read end: the end of the last whole record (a reader of new output starts there). */
  top: number;

  /** `growing`: the file is the log's current one, whose last record may be half written at `end`. */
  constructor(readonly file: LogFile, public end: number, public growing = false) {
    this.top = end;
  }

  async #bytes(pos: number, len: number): Promise<Buffer> {
    if (pos >= this.#cacheAt && pos + len <= this.#cacheAt + this.#cache.length) return this.#cache.subarray(pos - this.#cacheAt, pos - this.#cacheAt + len);
    const from = len >= BACK_BLOCK ? pos : Math.max(0, pos + len - BACK_BLOCK);
    const buf = Buffer.allocUnsafe(pos + len - from);
    let got = 0;
    while (got < buf.length) {
      const n = await this.file.read(buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    this.#cache = buf.subarray(0, got);
    this.#cacheAt = from;
    return this.#cache.subarray(pos - from, Math.min(got, pos - from + len));
  }

  /**
   * The record before the current end (its header; its data is read by {@link data}), moving the
   * end to its start; undefined at the file's start. A file whose records have no trailer is read
   * forwards once instead.
   */
  async prev(): Promise<{ kind: number; timeNs: bigint; start: number; length: number; record?: LogRecord } | undefined> {
    if (this.#fallback) {
      const record = this.#fallback.pop();
      return record && { kind: 0, timeNs: record.timeNs, start: 0, length: record.data.length, record };
    }
    if (this.end === 0) return undefined;
    let hdr = this.end >= RECORD_HEADER + RECORD_TRAILER ? await this.#header() : undefined;
    // The writer's write() may be seen half done (the size grows page by page): look again.
    for (let i = 0; !hdr && this.growing && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 1));
      this.#cache = Buffer.alloc(0);
      this.end = await this.file.size();
      hdr = this.end >= RECORD_HEADER + RECORD_TRAILER ? await this.#header() : undefined;
    }
    if (this.growing) this.top = this.end;
    this.growing = false;
    if (!hdr) {
      const all = Buffer.allocUnsafe(this.end);
      let got = 0;
      while (got < all.length) {
        const n = await this.file.read(all, got, all.length - got, got);
        if (n === 0) break;
        got += n;
      }
      const { records, consumed } = decodeRecords(all.subarray(0, got));
      this.#fallback = records;
      if (this.top === this.end) this.top = consumed;
      this.end = 0;
      return this.prev();
    }
    this.end = hdr.start;
    return hdr;
  }

  async #header(): Promise<{ kind: number; timeNs: bigint; start: number; length: number } | undefined> {
    const length = (await this.#bytes(this.end - RECORD_TRAILER, RECORD_TRAILER)).readUInt32LE(0);
    const start = this.end - RECORD_TRAILER - length - RECORD_HEADER;
    if (start < 0) return undefined;
    const h = await this.#bytes(start, RECORD_HEADER);
    const kind = h[0]!;
    if (!(kind & KIND_TRAILER) || (kind & 0x7f) < 1 || (kind & 0x7f) > 3 || h.readUInt32LE(9) !== length) return undefined;
    return { kind, timeNs: h.readBigUInt64LE(1), start, length };
  }

  /** `len` bytes of a record's data ending `fromEnd` bytes before the end of its data. */
  data(rec: { start: number; length: number }, fromEnd: number, len: number): Promise<Buffer> {
    return this.#bytes(rec.start + RECORD_HEADER + rec.length - fromEnd - len, len).then((b) => Buffer.from(b));
  }
}

/** How much a tail reads at first (then twice as much each time it needs more). */
const BACK_BLOCK = 4096;

type SplitLine = { stream: LogStream; text: string; timeNs: bigint };

/**
 * The last lines of a log, read from the end of its newest file backwards (into older files
 * when needed), without reading the files whole: a window of bytes at the end grows (doubling)
 * until `enough(lines)` or the start of the log. The first line of each stream in the window is
 * dropped unless the window reaches the log's start, since it may have begun before. Returns the
 * lines, the splitter (which holds the unterminated last lines) and where the newest file's last
 * whole record ends (a half-written one is left to the follower).
 */
async function tailWindow(
  files: LogFile[], enough: (lines: SplitLine[]) => boolean,
): Promise<{ lines: SplitLine[]; splitter: LineSplitter; top: number }> {
  const readers: BackwardFile[] = [];
  for (const f of [...files].reverse()) readers.push(new BackwardFile(f, await f.size(), readers.length === 0));
  // The window, newest piece first: whole records, and maybe the end of the oldest one's data.
  const pieces: LogRecord[] = [];
  let fileIndex = 0;
  let current: { kind: number; timeNs: bigint; start: number; length: number; taken: number } | undefined;
  let atStart = false;
  let leadMask = 0;
  let budget = BACK_BLOCK;
  for (;;) {
    // Grow the window by `budget` bytes of data (whole small records count at least one byte).
    let more = budget;
    while (more > 0 && !atStart) {
      if (!current || current.taken === current.length) {
        const r = readers[fileIndex];
        const h = r ? await r.prev() : undefined;
        current = undefined;
        if (!h) {
          if (fileIndex + 1 < readers.length) fileIndex++;
          else {
            atStart = true;
            leadMask = readers.length ? await leadingBoundary(readers[readers.length - 1]!.file) : 0;
          }
          continue;
        }
        if (h.record) {
          if (h.record.boundary === undefined) pieces.push(h.record);
          more -= Math.max(1, h.length);
          continue;
        }
        if (h.kind === KIND_BOUNDARY) continue;
        current = { ...h, taken: 0 };
        pieces.push(makeRecord(h.kind, h.timeNs, Buffer.alloc(0)));
      }
      const n = Math.min(more, current.length - current.taken);
      const bytes = await readers[fileIndex]!.data(current, current.taken, n);
      current.taken += n;
      const last = pieces[pieces.length - 1]!;
      pieces[pieces.length - 1] = { ...last, data: Buffer.concat([bytes, last.data]) };
      more -= n;
    }
    const splitter = new LineSplitter(atStart ? streamsOf(leadMask) : ['stdout', 'stderr']);
    const lines = splitter.push([...pieces].reverse());
    if (atStart || enough(lines)) return { lines, splitter, top: readers[0]?.top ?? 0 };
    budget *= 2;
  }
}

/**
 * Reads a container's log as lines, across its rotated files (oldest first). With `tail`, only
 * the end is read (see {@link tailWindow}). With `follow`, keeps reading new output, across
 * rotations, until `isRunning()` turns false and the log is drained.
 */
export async function* readLogLines(loc: LogLocation | string, options: LogsOptions, isRunning: () => Promise<boolean>): AsyncGenerator<LogLine> {
  const where: LogLocation = typeof loc === 'string' ? { path: loc, maxFile: DEFAULT_LOG_LIMITS.maxFile } : loc;
  const io = where.io ?? fsLogIO;
  const since = options.since !== undefined ? toMs(options.since) : -Infinity;
  const until = options.until !== undefined ? toMs(options.until) : Infinity;
  const want = (s: LogStream) => (s === 'stdout' ? options.stdout !== false : options.stderr !== false);
  const emit = (l: SplitLine): LogLine | undefined => {
    const ms = Number(l.timeNs / 1_000_000n);
    if (!want(l.stream) || ms < since || ms >= until) return undefined;
    return { stream: l.stream, text: l.text, time: new Date(ms) };
  };
  const visible = (lines: SplitLine[]) => lines.map(emit).filter((l): l is LogLine => l !== undefined);
  const files = await openLogFiles(where, io);
  const newest = files.pop();
  const cursor = new LogCursor(where, io, newest, 0);
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
      while (running) {
        await waiter.wait(FOLLOW_POLL_MS);
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
  } finally {
    await Promise.allSettled(files.map((f) => f.close()));
    await cursor.close();
  }
}

/**
 * Wakes a follower when a log changes (inotify on its directory through `fs.watch`, so that a
 * rotation's new file is seen too), or after `ms` at the latest: new output is seen at once, and
 * the running check still happens regularly.
 */
class ChangeWaiter {
  #watcher: FSWatcher | undefined;
  #wake: (() => void) | undefined;
  #changed = false;

  constructor(path: string) {
    const base = basename(path);
    try {
      this.#watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
        if (name !== null && !String(name).startsWith(base)) return;
        this.#changed = true;
        this.#wake?.();
      });
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

  close(): void {
    this.#watcher?.close();
  }
}

/** About how much a reader reads before it hands the lines on. */
const READ_LIMIT = 1024 * 1024;

/** How often a follower checks whether the container still runs when no output arrives. */
const FOLLOW_POLL_MS = 25;

/**
 * Follows the raw records of a log from `from` (`'start'`: the oldest kept file's start;
 * `'end'`, the default: the current file's end), across rotations, until `isRunning()` turns
 * false and the log is drained, or `signal` aborts. New records are delivered as soon as they
 * are written.
 */
export async function* followRecords(
  loc: LogLocation | string, options: { from?: 'start' | 'end' | LogPosition; signal?: AbortSignal }, isRunning: () => Promise<boolean>,
): AsyncGenerator<LogRecord> {
  const where: LogLocation = typeof loc === 'string' ? { path: loc, maxFile: DEFAULT_LOG_LIMITS.maxFile } : loc;
  const io = where.io ?? fsLogIO;
  const files = await openLogFiles(where, io);
  const from = options.from ?? 'end';
  // A position taken earlier: that file, wherever rotation has moved it; the oldest kept one when it is gone.
  const at = typeof from === 'object' ? files.findIndex((f) => f.ino === from.ino) : -1;
  const first = typeof from === 'object' ? files.splice(Math.max(0, at), 1)[0] : from === 'start' ? files.shift() : files.pop();
  await Promise.all(files.map((f) => f.close()));
  const pos = !first || from === 'start' ? 0 : typeof from === 'object' ? (at >= 0 ? from.pos : 0) : await first.size();
  const cursor = new LogCursor(where, io, first, pos);
  const waiter = new ChangeWaiter(where.path);
  try {
    for (;;) {
      if (options.signal?.aborted) return;
      const running = await isRunning();
      // Copies: the records point into a buffer the next read replaces.
      const copy = (rs: LogRecord[]) => rs.filter((r) => r.boundary === undefined).map((r) => ({ ...r, data: Buffer.from(r.data) }));
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

/** Formats lines as `docker logs` prints them. */
export function linesToText(lines: LogLine[], timestamps: boolean): string {
  return lines.map((l) => (timestamps ? `${l.time.toISOString()} ${l.text}` : l.text)).join('');
}
