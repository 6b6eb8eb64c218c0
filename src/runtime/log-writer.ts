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
import { headKept, tailRotates, type KeepPart, type OutputTruncated } from './log-cap.js';
import { carryTail, streamBit } from './log-carry.js';

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
 * With `maxOutput` it follows the output cap's rule (`log-cap.ts`).
 */
export class LogWriter {
  #fd: number;
  #size: number;
  /** Streams whose last byte written was not a newline (bit 0 stdout, bit 1 stderr). */
  #midLine = 0;
  /** Per stream: with `head`, the bytes logged; with `tail`, the bytes in the current file. */
  readonly #counted = { stdout: 0, stderr: 0 };
  /** Streams the output cap cut (bit 0 stdout, bit 1 stderr). */
  #cut = 0;

  /** Opens (creating) the log at `path` for appending. */
  constructor(
    readonly path: string,
    readonly limits: LogLimits,
  ) {
    this.#fd = openSync(path, 'a', 0o640);
    this.#size = fstatSync(this.#fd).size;
  }

  /**
   * Appends one record of `data`, rotating first when it would take the file past `maxSize`
   * (with a `tail` cap: when it would take its stream past `maxOutput` in the file).
   */
  write(stream: LogStream, timeNs: bigint, data: Buffer): void {
    const { maxOutput, keep } = this.limits;
    if (maxOutput !== undefined && keep !== 'tail') {
      const kept = headKept(this.#counted[stream], data.length, maxOutput);
      if (kept < data.length) this.#cut |= streamBit(stream);
      if (kept === 0) return;
      data = data.subarray(0, kept);
    }
    const rec = encodeRecord(stream, timeNs, data);
    if (maxOutput === undefined || keep !== 'tail') {
      if (this.#size > 0 && this.#size + rec.length > this.limits.maxSize) this.#rotate(timeNs);
    } else if (tailRotates(this.#counted[stream], data.length, maxOutput)) this.#rotate(timeNs, stream);
    if (maxOutput !== undefined) this.#counted[stream] += data.length;
    if (!this.#append(rec)) return;
    const bit = streamBit(stream);
    if (data.length) this.#midLine = data[data.length - 1] === 0x0a ? this.#midLine & ~bit : this.#midLine | bit;
  }

  /** The streams the output cap cut so far; undefined when none. */
  get truncated(): OutputTruncated | undefined {
    if (this.#cut === 0) return undefined;
    return { ...(this.#cut & 1 ? { stdout: true } : {}), ...(this.#cut & 2 ? { stderr: true } : {}) };
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }

  /** Starts a new file; `full` (a `tail` cap): the stream that filled the current one. */
  #rotate(timeNs: bigint, full?: LogStream): void {
    const other: LogStream = full === 'stdout' ? 'stderr' : 'stdout';
    const newer = this.#counted[other];
    // A new file counts from 0 (after a failed rotation too, so a failing disk is not scanned at every write).
    if (full) this.#counted.stdout = this.#counted.stderr = 0;
    let fd: number;
    try {
      if (full) this.#carry(other, newer);
      else rotateLogFiles(this.path, this.limits.maxFile);
      fd = openSync(this.path, 'a', 0o640);
    } catch {
      return; // Keep writing to the current file rather than lose output.
    }
    closeSync(this.#fd);
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
    this.#append(encodeBoundary(timeNs, this.#midLine));
  }

  /**
   * A `tail` cap's rotation (see `log-cap.ts`): `.2` becomes what `other` (the stream that did not
   * fill the current file, `newer` bytes of it there) still needs of the old `.2` and `.1`, then
   * the current file becomes `.1`.
   */
  #carry(other: LogStream, newer: number): void {
    const [older, oldest] = [rotatedPath(this.path, 1), rotatedPath(this.path, 2)];
    const tmp = `${oldest}.tmp`;
    const { cut, copied } = carryTail([oldest, older], other, newer, this.limits.maxOutput!, tmp);
    if (copied) renameSync(tmp, oldest);
    else rotateLogFiles(oldest, 1);
    this.#cut |= cut;
    renameSync(this.path, older);
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
