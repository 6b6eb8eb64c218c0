/**
 * The tail of a container's output log, read from the end backwards (into older files when
 * needed) without reading the files whole: each record ends with its length, so records can be
 * walked back from the end.
 *
 * @module
 */
import {
  decodeRecords,
  KIND_BOUNDARY,
  KIND_TRAILER,
  makeRecord,
  RECORD_HEADER,
  RECORD_TRAILER,
  type LogRecord,
} from '../runtime/log-format.js';
import { leadingBoundary, streamsOf, type LogFile } from './log-files.js';
import { LineSplitter, type SplitLine } from './log-lines.js';

/** How much a tail reads at first (then twice as much each time it needs more). */
const BACK_BLOCK = 4096;

/** Reads records backwards from the end of one file, using each record's trailing length. */
class BackwardFile {
  #cache = Buffer.alloc(0);
  #cacheAt = 0;
  /** Records read forwards, for a file without trailers (written by an older berth): popped from the end. */
  #fallback: LogRecord[] | undefined;

  /** Where the records read end: the end of the last whole record (a reader of new output starts there). */
  top: number;

  /** `growing`: the file is the log's current one, whose last record may be half written at `end`. */
  constructor(
    readonly file: LogFile,
    public end: number,
    public growing = false,
  ) {
    this.top = end;
  }

  async #bytes(pos: number, len: number): Promise<Buffer> {
    if (pos >= this.#cacheAt && pos + len <= this.#cacheAt + this.#cache.length)
      return this.#cache.subarray(pos - this.#cacheAt, pos - this.#cacheAt + len);
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
  async prev(): Promise<
    { kind: number; timeNs: bigint; start: number; length: number; record?: LogRecord } | undefined
  > {
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
    if (!(kind & KIND_TRAILER) || (kind & 0x7f) < 1 || (kind & 0x7f) > 3 || h.readUInt32LE(9) !== length)
      return undefined;
    return { kind, timeNs: h.readBigUInt64LE(1), start, length };
  }

  /** `len` bytes of a record's data ending `fromEnd` bytes before the end of its data. */
  data(rec: { start: number; length: number }, fromEnd: number, len: number): Promise<Buffer> {
    return this.#bytes(rec.start + RECORD_HEADER + rec.length - fromEnd - len, len).then((b) => Buffer.from(b));
  }
}

/**
 * The last lines of a log, read from the end of its newest file backwards (into older files
 * when needed), without reading the files whole: a window of bytes at the end grows (doubling)
 * until `enough(lines)` or the start of the log. The first line of each stream in the window is
 * dropped unless the window reaches the log's start, since it may have begun before. Returns the
 * lines, the splitter (which holds the unterminated last lines) and where the newest file's last
 * whole record ends (a half-written one is left to the follower).
 */
export async function tailWindow(
  files: LogFile[],
  enough: (lines: SplitLine[]) => boolean,
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
