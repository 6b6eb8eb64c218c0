/**
 * The container log file: a sequence of binary records, appended by the zygote as output
 * arrives, in arrival order. Binary keeps output byte-exact (no JSON escaping, no lossy UTF-8).
 *
 * ```text
 * record = kind:u8 | time:u64le (ns since epoch) | length:u32le | bytes | length:u32le
 * kind   = 0x81 stdout, 0x82 stderr, 0x83 boundary (1 byte of data: which streams start mid-line)
 * ```
 *
 * The trailing length lets a reader walk the file backwards from its end (`logs({ tail })`
 * reads only the end of a long log): the record ending at `e` starts at `e − 17 − length`, and
 * its header repeats that length. Files written before the trailer existed hold kinds 1 and 2
 * (no trailer); {@link decodeRecords} reads both, a backward reader falls back to reading such
 * a file forwards.
 *
 * A log is rotated by its writer (`log-writer.ts`, and `berth-monitor` for detached containers):
 * `output.log` is the newest file, `output.log.1` the one before, and so on. A file that follows
 * a rotation starts with a boundary record: bit 0 set when stdout was mid-line at the rotation,
 * bit 1 for stderr. When the files before it have been dropped, a reader drops the rest of that
 * line rather than show its tail as a line.
 *
 * A reader may meet a partly written record at the end of the file: {@link decodeRecords}
 * leaves it for the next read.
 *
 * @module
 */

/** Header size of one record. */
export const RECORD_HEADER = 13;

/** Trailer size of one record (kinds with {@link KIND_TRAILER}). */
export const RECORD_TRAILER = 4;

/** Bit of the kind byte: the record ends with its length. */
export const KIND_TRAILER = 0x80;

/** Kind of a boundary record (see the module's description). */
export const KIND_BOUNDARY = 0x83;

/** Which output stream a record came from. */
export type LogStream = 'stdout' | 'stderr';

/** One decoded record. */
export interface LogRecord {
  /** The stream. */
  stream: LogStream;
  /** When the bytes arrived, ns since epoch. */
  timeNs: bigint;
  /** The bytes. */
  data: Buffer;
  /**
   * Set on a boundary record only (its `data` is then empty): which streams were mid-line when
   * the file before was rotated out (bit 0 stdout, bit 1 stderr).
   */
  boundary?: number;
  /**
   * Never in a file: set by a reader on a boundary record it makes itself where it moved on to a
   * file that is not known to follow the one it read (that one was dropped by rotation before the
   * reader was done with the log): output written in between may be missing there. Its `boundary`
   * is the next file's (which streams begin mid-line there).
   */
  lost?: true;
}

/** Encodes one record. */
export function encodeRecord(stream: LogStream, timeNs: bigint, data: Buffer): Buffer {
  return encodeKind(stream === 'stdout' ? 0x81 : 0x82, timeNs, data);
}

/** Encodes a boundary record: `partial` has bit 0 for stdout, bit 1 for stderr mid-line. */
export function encodeBoundary(timeNs: bigint, partial: number): Buffer {
  return encodeKind(KIND_BOUNDARY, timeNs, Buffer.from([partial]));
}

function encodeKind(kind: number, timeNs: bigint, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER + data.length + RECORD_TRAILER);
  out[0] = kind;
  out.writeBigUInt64LE(timeNs, 1);
  out.writeUInt32LE(data.length, 9);
  data.copy(out, RECORD_HEADER);
  out.writeUInt32LE(data.length, RECORD_HEADER + data.length);
  return out;
}

/** The size on disk of a record of kind `kind` holding `length` bytes. */
export function recordSize(kind: number, length: number): number {
  return RECORD_HEADER + length + (kind & KIND_TRAILER ? RECORD_TRAILER : 0);
}

/** Makes a record from its header fields and bytes. */
export function makeRecord(kind: number, timeNs: bigint, data: Buffer): LogRecord {
  if (kind === KIND_BOUNDARY) return { stream: 'stdout', timeNs, data: Buffer.alloc(0), boundary: data[0] ?? 0 };
  return { stream: (kind & 0x7f) === 2 ? 'stderr' : 'stdout', timeNs, data };
}

/**
 * Decodes every whole record in `buf`; returns them and the number of bytes consumed (the
 * rest is an incomplete record).
 */
export function decodeRecords(buf: Buffer): { records: LogRecord[]; consumed: number } {
  const records: LogRecord[] = [];
  let off = 0;
  while (buf.length - off >= RECORD_HEADER) {
    const len = buf.readUInt32LE(off + 9);
    const kind = buf[off]!;
    const size = recordSize(kind, len);
    if (buf.length - off < size) break;
    records.push(
      makeRecord(kind, buf.readBigUInt64LE(off + 1), buf.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len)),
    );
    off += size;
  }
  return { records, consumed: off };
}

const epochOffsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Current time in ns since epoch (monotonic within a process). */
export function nowNs(): bigint {
  return epochOffsetNs + process.hrtime.bigint();
}
