/**
 * The files of a container's output log, as readers see them: opened by inode (a rotation renames
 * every file), and read forwards from one file into the next across rotations ({@link LogCursor}).
 *
 * @module
 */
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { decodeRecords, KIND_BOUNDARY, RECORD_HEADER, type LogRecord, type LogStream } from '../runtime/log-format.js';
import { DEFAULT_LOG_LIMITS, rotatedPath } from '../runtime/log-writer.js';
import { attachCleanupErrors } from '../errors.js';
import { cleanupErrors, settleAll } from './cleanup.js';

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
  ino: async (path) => (await statIfAny(path))?.ino,
};

/** `stat(path)`, or undefined when there is no such file (a log not written yet, or renamed away by a rotation). */
async function statIfAny(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** A place in a log: a file (by inode) and a byte offset in it. */
export interface LogPosition {
  /** The file's inode number. */
  ino: number;
  /** Byte offset. */
  pos: number;
}

/** The end of a log's current file now (for a reader that starts later); undefined when there is no log yet. */
export async function logEnd(path: string): Promise<LogPosition | undefined> {
  const s = await statIfAny(path);
  return s && { ino: s.ino, pos: s.size };
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
export async function openLogFiles(loc: LogLocation, io: LogIO): Promise<LogFile[]> {
  let files: LogFile[];
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
      throw attachCleanupErrors(e, await cleanupErrors(files.map((f) => () => f.close())));
    }
    const after = await io.ino(loc.path);
    if ((before === after && files[files.length - 1]?.ino === after) || attempt === 4) return files;
    await settleAll(
      files.map((f) => () => f.close()),
      `cannot close the files of log ${loc.path}`,
    );
  }
}

/** Reads a file's first record, if it is a boundary record: which streams begin mid-line. */
export async function leadingBoundary(f: LogFile): Promise<number> {
  const b = Buffer.alloc(RECORD_HEADER + 1);
  const n = await f.read(b, 0, b.length, 0);
  return n === b.length && b[0] === KIND_BOUNDARY ? b[RECORD_HEADER]! : 0;
}

/** The streams a boundary record's mask names. */
export const streamsOf = (mask: number): LogStream[] => [
  ...(mask & 1 ? ['stdout' as const] : []),
  ...(mask & 2 ? ['stderr' as const] : []),
];

/** The record a reader puts where it may have missed output (see {@link LogRecord.lost}); `mask`: the next file's mid-line streams. */
const lostMarker = (mask: number): LogRecord => ({
  stream: 'stdout',
  timeNs: 0n,
  data: Buffer.alloc(0),
  boundary: mask,
  lost: true,
});

/** A log's location with its defaults: a bare path is the current file, with the default number of files kept. */
export function logLocation(loc: LogLocation | string): LogLocation {
  return typeof loc === 'string' ? { path: loc, maxFile: DEFAULT_LOG_LIMITS.maxFile } : loc;
}

/**
 * Reads a log forwards, from one file into the next across rotations: when the current file is
 * drained and no longer the log's current one, it was rotated, and the reader continues in the
 * file written after it (found by inode among the kept files; the file it reads stays open, so no
 * new file can take its inode number).
 *
 * The policy: a reader at most `maxFile − 1` rotations behind the writer gets every record
 * exactly once, in the order written. One that falls further behind finds its file dropped; it
 * goes on with the oldest file still kept, never with one it has read, and puts a marker record
 * there (`lost`, see {@link LogRecord.lost}): the files between are gone. The marker says output
 * may be missing: when the reader was exactly `maxFile` rotations behind, none is (the files do
 * not record which one came before them), from `maxFile + 1` on some is.
 */
export class LogCursor {
  #buf = Buffer.alloc(0);
  readonly #chunk = Buffer.allocUnsafe(256 * 1024);

  /** A cursor at `pos` in `file` (undefined: the log's current file, once it exists) of the log at `loc`. */
  constructor(
    readonly loc: LogLocation,
    readonly io: LogIO,
    public file: LogFile | undefined,
    public pos: number,
  ) {}

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
      this.file = next.file;
      this.pos = 0;
      this.#buf = Buffer.alloc(0);
      if (next.lost) out.push(lostMarker(await leadingBoundary(next.file)));
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
    for (let total = 0; ;) {
      if (total >= limit) return false;
      const n = await this.file!.read(this.#chunk, 0, this.#chunk.length, this.pos);
      if (n === 0) return true;
      total += n;
      this.pos += n;
      this.#buf = this.#buf.length
        ? Buffer.concat([this.#buf, this.#chunk.subarray(0, n)])
        : Buffer.from(this.#chunk.subarray(0, n));
      const { records, consumed } = decodeRecords(this.#buf);
      for (const r of records) out.push(r);
      this.#buf = this.#buf.subarray(consumed);
    }
  }

  /**
   * The file written after the current one once it has been rotated out; undefined while it is
   * still current (or its successor is not there yet). `lost`: the current file is no longer
   * among the kept ones, so the oldest kept file is taken, and the files between may have been
   * dropped unread.
   */
  async #successor(): Promise<{ file: LogFile; lost: boolean } | undefined> {
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
      // The number seen before the open may be a new file's by now (the file it named dropped, its
      // inode reused): the successor is proven once it is open, by the current file (open too, so
      // neither number can be another file's) still being right behind it.
      const proven = at > 0 ? (await this.io.ino(rotatedPath(this.loc.path, at))) === cur.ino : true;
      if (f && f.ino === inos[want] && proven) return { file: f, lost: at < 0 };
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
