/**
 * The carry of a log with a `tail` output cap (see `log-cap.ts`): at a rotation, the records of
 * one stream still needed to hold its last `maxOutput` bytes are copied from the files about to be
 * replaced into a new oldest file. `berth-monitor` does the same in C (`carry` in
 * `monitor/monitor.c`).
 *
 * @module
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { KIND_BOUNDARY, RECORD_HEADER, encodeBoundary, recordSize, type LogStream } from './log-format.js';
import { tailDrops } from './log-cap.js';

/** Bit of a stream in the masks of the log (bit 0 stdout, bit 1 stderr). */
export function streamBit(stream: LogStream): number {
  return stream === 'stdout' ? 1 : 2;
}

/** One record of a log file: its kind, where it starts, its data length and size on disk. */
interface Span {
  kind: number;
  pos: number;
  len: number;
  size: number;
}

/** The whole records of the file open on `fd`, in order. */
function* spans(fd: number): Generator<Span> {
  const head = Buffer.alloc(RECORD_HEADER);
  for (let pos = 0; readSync(fd, head, 0, RECORD_HEADER, pos) === RECORD_HEADER;) {
    const kind = head[0]!;
    const len = head.readUInt32LE(9);
    const size = recordSize(kind, len);
    yield { kind, pos, len, size };
    pos += size;
  }
}

/** Opens `path` for reading; undefined when it does not exist (or cannot be read). */
function openIfThere(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch {
    return undefined;
  }
}

/**
 * Copies to `out` the records of `stream` in `files` (oldest first) that it still needs: `newer`
 * being its bytes in newer files, the oldest are dropped while the rest still holds `max` bytes
 * ({@link tailDrops}). `out` starts with a boundary record (the stream mid-line when a dropped
 * record of it ended without a newline). Returns the bits of the streams that lost bytes, and
 * whether anything was copied (else `out` is not made).
 */
export function carryTail(
  files: string[],
  stream: LogStream,
  newer: number,
  max: number,
  out: string,
): { cut: number; copied: boolean } {
  const kind = stream === 'stdout' ? 0x81 : 0x82;
  const fds = files.map(openIfThere).filter((fd): fd is number => fd !== undefined);
  let cut = 0;
  let outFd: number | undefined;
  try {
    let rest = 0;
    for (const fd of fds) for (const s of spans(fd)) if ((s.kind | 0x80) === kind) rest += s.len;
    let mid = false;
    for (const fd of fds) {
      for (const s of spans(fd)) {
        if (s.kind === KIND_BOUNDARY || s.len === 0) continue;
        if ((s.kind | 0x80) !== kind) {
          cut |= (s.kind & 0x7f) === 2 ? 2 : 1;
          continue;
        }
        // Once one is kept, so are all after it (what stays only shrinks).
        const drop = tailDrops(rest, s.len, newer, max);
        rest -= s.len;
        if (drop) {
          cut |= streamBit(stream);
          const last = Buffer.alloc(1);
          readSync(fd, last, 0, 1, s.pos + RECORD_HEADER + s.len - 1);
          mid = last[0] !== 0x0a;
          continue;
        }
        const rec = Buffer.alloc(s.size);
        readSync(fd, rec, 0, s.size, s.pos);
        if (outFd === undefined) {
          outFd = openSync(out, 'w', 0o640);
          const time = rec.readBigUInt64LE(1);
          writeSync(outFd, encodeBoundary(time, mid ? streamBit(stream) : 0));
        }
        writeSync(outFd, rec);
      }
    }
  } finally {
    for (const fd of fds) closeSync(fd);
    if (outFd !== undefined) closeSync(outFd);
  }
  return { cut, copied: outFd !== undefined };
}
