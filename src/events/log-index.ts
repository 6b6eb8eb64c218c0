/**
 * The index of an event log file, `<log>.idx` beside it: where a read `since` a time can start
 * without parsing what comes before.
 *
 * An event's `time` comes from the clock of the process that appended it, before it waited for
 * the log, so times in the log are not in order (see {@link BerthEvent}): a binary search on
 * them would miss events. The index keeps checkpoints `(offset, maxTime)` instead: `offset` is the
 * start of a line, and every event in a line before it has a `time` of at most `maxTime`. The
 * maxima only grow along the file, so the last checkpoint whose `maxTime` is below `since` is
 * where a read from `since` starts, and it skips only events a full scan would filter out.
 * Checkpoints are about {@link INDEX_STEP} bytes apart, so a read parses at most that much
 * besides what it returns.
 *
 * The index is derived data and never trusted: it names the log file's inode and a checksum of
 * its first bytes (an inode number is reused once a rotated file is deleted), carries a checksum
 * of itself, and each checkpoint a checksum of the {@link TAIL_BYTES} bytes before it (the end of
 * the line before, with its time: a checkpoint inside a line, or in a file truncated and grown
 * again, does not match). A read checks all of them for the checkpoint it uses, and otherwise
 * scans from the start of the file and writes a new index. It is replaced whole with a
 * rename (a crash leaves the old one or the new one), under the log's shared lock by readers and
 * appenders (several may write at once: each writes a correct index of the same file, and the
 * last rename wins), and moved with the log under the exclusive lock on rotation.
 *
 * Format: one line, `<crc32 of the JSON, 8 hex digits> <JSON>`, the JSON being
 * `{"v":1,"ino":…,"headLen":…,"head":…,"points":[offset, maxTime, tail, offset, maxTime, tail, …]}`
 * (`maxTime` null when no event comes before the offset).
 *
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { writeFileAtomicSync } from '../state/atomic.js';
import { asEvent, type BerthEvent } from './types.js';

/** Bytes of log between two checkpoints of an index (at least; checkpoints sit at line starts). */
export const INDEX_STEP = 16 * 1024;

/** How many of a log file's first bytes the index's `head` checksum covers (fewer in a shorter file). */
const HEAD_BYTES = 256;
/** How many bytes before a checkpoint its `tail` checksum covers (fewer at the start of the file). */
export const TAIL_BYTES = 64;
const NEWLINE = 0x0a;
const FIELDS = 3;

/** One checkpoint: every event in a line before `offset` has `time <= maxTime`. */
export interface Checkpoint {
  /** Byte offset of the start of a line. */
  offset: number;
  /** The largest event time before `offset`; -Infinity when there is no event before it. */
  maxTime: number;
  /** CRC-32 of the {@link TAIL_BYTES} bytes before `offset` (all of them when fewer); 0 for the start of the file. */
  tail: number;
}

/** The index of one log file. */
export interface LogIndex {
  /** Inode number of the log file it describes. */
  ino: number;
  /** How many of the file's first bytes {@link LogIndex.head} covers. */
  headLen: number;
  /** CRC-32 of the file's first `headLen` bytes. */
  head: number;
  /** Checkpoints, in increasing offset (and so non-decreasing maxTime). */
  points: Checkpoint[];
}

/** The start of a file, as a checkpoint. */
export const FILE_START: Readonly<Checkpoint> = Object.freeze({ offset: 0, maxTime: -Infinity, tail: 0 });

/** The index file of log file `log`. */
export function indexFileOf(log: string): string {
  return `${log}.idx`;
}

/**
 * Reads and checks the index of the log file open as `fd` (with its `fstat` in `st`).
 *
 * @returns the index, or undefined when there is none or it is not one of this file (stale,
 * corrupt, or made before a truncation).
 */
export function loadIndex(indexFile: string, fd: number, st: fs.Stats): LogIndex | undefined {
  let text: string;
  try {
    text = fs.readFileSync(indexFile, 'latin1');
  } catch {
    // No index (or an unreadable one): the caller scans the log, as documented above.
    return undefined;
  }
  const sp = text.indexOf(' ');
  const json = text.slice(sp + 1).trimEnd();
  if (sp !== 8 || crc32(json).toString(16).padStart(8, '0') !== text.slice(0, 8)) return undefined;
  let v: { v?: unknown; ino?: unknown; headLen?: unknown; head?: unknown; points?: unknown };
  try {
    v = JSON.parse(json) as typeof v;
  } catch {
    // A corrupt index counts as none.
    return undefined;
  }
  if (
    v.v !== 1 ||
    v.ino !== st.ino ||
    typeof v.headLen !== 'number' ||
    typeof v.head !== 'number' ||
    !Array.isArray(v.points)
  )
    return undefined;
  if (v.points.length % FIELDS !== 0 || v.headLen > st.size || v.headLen < Math.min(HEAD_BYTES, st.size))
    return undefined;
  if (headChecksum(fd, v.headLen) !== v.head) return undefined;
  const points: Checkpoint[] = [];
  for (let i = 0; i < v.points.length; i += FIELDS) {
    const offset = v.points[i] as unknown;
    const max = v.points[i + 1] as unknown;
    const tail = v.points[i + 2] as unknown;
    const maxTime = max === null ? -Infinity : max;
    if (
      typeof offset !== 'number' ||
      !Number.isSafeInteger(offset) ||
      typeof maxTime !== 'number' ||
      typeof tail !== 'number' ||
      offset > st.size
    )
      return undefined;
    const prev = points[points.length - 1];
    if (offset <= (prev?.offset ?? 0) || maxTime < (prev?.maxTime ?? -Infinity)) return undefined;
    points.push({ offset, maxTime, tail });
  }
  return { ino: st.ino, headLen: v.headLen, head: v.head, points };
}

/**
 * Where a read of events from `since` starts in the file open as `fd`: the last checkpoint of
 * `index` whose maxTime is below `since`, after checking the bytes before it.
 *
 * @returns the checkpoint ({@link FILE_START} for the start of the file), or undefined when the
 * index does not fit the file.
 */
export function startFor(index: LogIndex, since: number, fd: number): Checkpoint | undefined {
  let lo = 0;
  let hi = index.points.length; // points[lo..hi) not yet decided; answer is the count of points with maxTime < since
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (index.points[mid]!.maxTime < since) lo = mid + 1;
    else hi = mid;
  }
  if (lo === 0) return FILE_START;
  const point = index.points[lo - 1]!;
  const len = Math.min(TAIL_BYTES, point.offset);
  const b = Buffer.alloc(len);
  if (fs.readSync(fd, b, 0, len, point.offset - len) !== len || b[len - 1] !== NEWLINE || crc32(b) !== point.tail)
    return undefined;
  return point;
}

/**
 * Parses the JSON lines of `data` (the file's bytes from `from.offset`) into `out`, as
 * `parseLines` does, and makes the checkpoints of what it read: one at the first line start at
 * least {@link INDEX_STEP} bytes past the previous one, and one at the end of the last complete
 * line when `end` is set (a file that will not grow: rotated) and that is at least
 * {@link TAIL_BYTES} past `from` (else the read there is small anyway).
 *
 * @returns the bytes consumed (up to the last newline) and the new checkpoints.
 */
export function parseIndexed(
  data: Buffer,
  from: Checkpoint,
  out: BerthEvent[],
  end = false,
): { used: number; points: Checkpoint[] } {
  const points: Checkpoint[] = [];
  let max = from.maxTime;
  let last = from.offset;
  let start = 0;
  const point = (at: number): Checkpoint => ({
    offset: from.offset + at,
    maxTime: max,
    tail: crc32(data.subarray(Math.max(0, at - TAIL_BYTES), at)),
  });
  for (let nl = data.indexOf(NEWLINE, start); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
    const offset = from.offset + start;
    if (offset - last >= INDEX_STEP) {
      points.push(point(start));
      last = offset;
    }
    if (nl > start) {
      try {
        const e = asEvent(JSON.parse(data.toString('utf8', start, nl)));
        if (e !== undefined) {
          out.push(e);
          if (e.time > max) max = e.time;
        }
      } catch {
        // not a complete event: skip it
      }
    }
    start = nl + 1;
  }
  if (end && from.offset + start > last && start >= Math.min(TAIL_BYTES, from.offset + start))
    points.push(point(start));
  return { used: start, points };
}

/**
 * Writes the index of the log file open as `fd`: the checkpoints of `index` (when it is this
 * file's) up to `from`, then `points`. Failures are ignored: the index only saves work, and the
 * next reader rebuilds it.
 */
export function saveIndex(
  indexFile: string,
  fd: number,
  st: fs.Stats,
  index: LogIndex | undefined,
  from: Checkpoint,
  points: Checkpoint[],
): void {
  try {
    const kept = (index?.points ?? []).filter((p) => p.offset <= from.offset);
    const all = [...kept, ...points];
    const headLen = index?.headLen ?? Math.min(HEAD_BYTES, st.size);
    const flat: (number | null)[] = [];
    for (const p of all) flat.push(p.offset, p.maxTime === -Infinity ? null : p.maxTime, p.tail);
    const json = JSON.stringify({
      v: 1,
      ino: st.ino,
      headLen,
      head: index?.head ?? headChecksum(fd, headLen),
      points: flat,
    });
    writeFileAtomicSync(indexFile, `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`, { fsync: false });
  } catch {
    // an optimisation: a missing index costs the next reader one scan
  }
}

/**
 * Deletes the temp files of index writes (`.<index>.tmp-<pid>-<n>`, see `atomic.ts`) beside log
 * file `log` whose writer process is gone (killed in the middle of a write).
 */
export function sweepIndexTemps(log: string): void {
  const dir = path.dirname(log);
  const prefixes = [log, `${log}.1`].map((f) => `.${path.basename(indexFileOf(f))}.tmp-`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    // No directory: no temps to sweep (a best-effort tidy-up).
    return;
  }
  for (const name of names) {
    const prefix = prefixes.find((p) => name.startsWith(p));
    if (prefix === undefined) continue;
    const pid = Number.parseInt(name.slice(prefix.length).split('-')[0] ?? '', 36);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // A probe: ESRCH means gone; EPERM, alive but another user's.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** CRC-32 of the first `len` bytes of the file open as `fd`. */
function headChecksum(fd: number, len: number): number {
  const b = Buffer.alloc(len);
  let n = 0;
  while (n < len) {
    const r = fs.readSync(fd, b, n, len - n, n);
    if (r === 0) break;
    n += r;
  }
  return crc32(b.subarray(0, n));
}

/**
 * Reads the events of the log file open as `fd` that a read from `since` needs (all of them
 * when `since` is undefined), using and extending its index.
 *
 * @param end - the file no longer grows (rotated, or read under the exclusive lock): index up to its very end.
 * @returns the bytes of the file consumed (the offset just past the last complete line).
 */
export function readIndexed(
  log: string,
  fd: number,
  since: number | undefined,
  out: BerthEvent[],
  end = false,
): number {
  const st = fs.fstatSync(fd);
  const idxFile = indexFileOf(log);
  const index = loadIndex(idxFile, fd, st);
  let from: Checkpoint = FILE_START;
  let usable: LogIndex | undefined;
  const point = index && startFor(index, since ?? -Infinity, fd);
  if (point !== undefined) {
    from = point;
    usable = index;
  }
  const data = readRange(fd, from.offset, st.size);
  const { used, points } = parseIndexed(data, from, out, end);
  const lastIndexed = usable?.points[usable.points.length - 1]?.offset ?? 0;
  if (points.length > 0 && points[points.length - 1]!.offset > lastIndexed)
    saveIndex(idxFile, fd, st, usable, from, points);
  return from.offset + used;
}

/** Bytes `[from, to)` of the file open as `fd` (fewer if it is shorter, more if it grew meanwhile up to `to`). */
function readRange(fd: number, from: number, to: number): Buffer {
  const b = Buffer.allocUnsafe(Math.max(0, to - from));
  let n = 0;
  while (n < b.length) {
    const r = fs.readSync(fd, b, n, b.length - n, from + n);
    if (r === 0) break;
    n += r;
  }
  return b.subarray(0, n);
}
