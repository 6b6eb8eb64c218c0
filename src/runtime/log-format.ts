/**
 * The container log file: a sequence of binary records, appended by the zygote as output
 * arrives, in arrival order. Binary keeps output byte-exact (no JSON escaping, no lossy UTF-8).
 *
 * ```text
 * record = stream:u8 (1 stdout, 2 stderr) | time:u64le (ns since epoch) | length:u32le | bytes
 * ```
 *
 * A reader may meet a partly written record at the end of the file: {@link decodeRecords}
 * leaves it for the next read.
 *
 * @module
 */

/** Header size of one record. */
export const RECORD_HEADER = 13;

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
}

/** Encodes one record. */
export function encodeRecord(stream: LogStream, timeNs: bigint, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER + data.length);
  out[0] = stream === 'stdout' ? 1 : 2;
  out.writeBigUInt64LE(timeNs, 1);
  out.writeUInt32LE(data.length, 9);
  data.copy(out, RECORD_HEADER);
  return out;
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
    if (buf.length - off - RECORD_HEADER < len) break;
    const kind = buf[off];
    records.push({
      stream: kind === 2 ? 'stderr' : 'stdout',
      timeNs: buf.readBigUInt64LE(off + 1),
      data: buf.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len),
    });
    off += RECORD_HEADER + len;
  }
  return { records, consumed: off };
}

const epochOffsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Current time in ns since epoch (monotonic within a process). */
export function nowNs(): bigint {
  return epochOffsetNs + process.hrtime.bigint();
}
