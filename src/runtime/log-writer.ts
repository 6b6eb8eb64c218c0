/**
 * Appending to a container's log with rotation, as Docker's `json-file` and `local` drivers do:
 * when a record would take the current file past `maxSize`, the file is renamed `<log>.1` (`.1`
 * to `.2` and so on, the oldest dropped) and a new file is started, so at most `maxFile` files
 * exist. The zygote writes attached containers' logs with {@link LogWriter}; `berth-monitor`
 * (`monitor/monitor.c`) does the same in C for detached ones.
 *
 * @module
 */
import { closeSync, fstatSync, ftruncateSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { encodeBoundary, encodeRecord, type LogStream } from './log-format.js';
import type { KeepPart } from './log-cap.js';

/** A log's limits: the largest size of one file in bytes and how many files are kept. */
export interface LogLimits {
  /** Bytes; a file is rotated before a record would take it past this (one record larger than this makes a file of its own). */
  maxSize: number;
  /** Files kept, the current one included (≥ 1). */
  maxFile: number;
  /** Bytes of each stream kept (see `log-cap.ts`); no cap without it. */
  maxOutput?: number;
  /** Which bytes `maxOutput` keeps: the first (`head`, default) or the last (`tail`). */
  keep?: KeepPart;
}

/** The cap when a container gives none: 20 MiB × 5 files, as Docker's `local` driver. */
export const DEFAULT_LOG_LIMITS: Readonly<LogLimits> = Object.freeze({ maxSize: 20 * 1024 * 1024, maxFile: 5 });

/** The path of the `i`-th file of the log at `path`: the current one for 0, then `<path>.1` (older) … */
export function rotatedPath(path: string, i: number): string {
  return i === 0 ? path : `${path}.${i}`;
}

/**
 * Shifts the files of the log at `path` by one: `<path>.(maxFile−2)` replaces
 * `<path>.(maxFile−1)` … `<path>` becomes `<path>.1`; with `maxFile` 1 the file is removed. The
 * writer then starts a new `<path>`. Missing files are skipped.
 */
export function rotateLogFiles(path: string, maxFile: number): void {
  const ignoreMissing = (f: () => void) => {
    try {
      f();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  };
  if (maxFile <= 1) return ignoreMissing(() => unlinkSync(path));
  for (let i = maxFile - 1; i >= 1; i--)
    ignoreMissing(() => renameSync(rotatedPath(path, i - 1), rotatedPath(path, i)));
}

/**
 * The writer of one container's log (synchronous: the zygote stays off libuv's thread pool). A
 * record that cannot be written (a full disk) is dropped, and a partly written one cut off
 * again, so the log stays a sequence of whole records and the container never stalls on it.
 */
export class LogWriter {
  #fd: number;
  #size: number;
  /** Streams whose last byte written was not a newline (bit 0 stdout, bit 1 stderr). */
  #midLine = 0;

  /** Opens (creating) the log at `path` for appending. */
  constructor(
    readonly path: string,
    readonly limits: LogLimits,
  ) {
    this.#fd = openSync(path, 'a', 0o640);
    this.#size = fstatSync(this.#fd).size;
  }

  /** Appends one record of `data`, rotating first when it would take the file past `maxSize`. */
  write(stream: LogStream, timeNs: bigint, data: Buffer): void {
    const rec = encodeRecord(stream, timeNs, data);
    if (this.#size > 0 && this.#size + rec.length > this.limits.maxSize) this.#rotate(timeNs);
    if (!this.#append(rec)) return;
    const bit = stream === 'stdout' ? 1 : 2;
    if (data.length) this.#midLine = data[data.length - 1] === 0x0a ? this.#midLine & ~bit : this.#midLine | bit;
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }

  #rotate(timeNs: bigint): void {
    let fd: number;
    try {
      rotateLogFiles(this.path, this.limits.maxFile);
      fd = openSync(this.path, 'a', 0o640);
    } catch {
      return; // Keep writing to the current file rather than lose output.
    }
    closeSync(this.#fd);
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
    this.#append(encodeBoundary(timeNs, this.#midLine));
  }

  #append(rec: Buffer): boolean {
    let off = 0;
    try {
      while (off < rec.length) off += writeSync(this.#fd, rec, off, rec.length - off);
    } catch {
      // A full disk or a failing file: the record is dropped (the caller counts it), never half kept.
      if (off > 0) {
        try {
          ftruncateSync(this.#fd, this.#size);
        } catch {
          // Nothing more to do: readers stop at the partial record.
        }
      }
      return false;
    } finally {
      if (off === rec.length) this.#size += off;
    }
    return true;
  }
}
