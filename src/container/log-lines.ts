/**
 * Lines of a container's output log: the splitter that turns records into lines per stream, in
 * the arrival order of each line's first byte.
 *
 * @module
 */
import type { LogRecord, LogStream } from '../runtime/log-format.js';

/**
 * One line as the splitter gives it: its stream, its text and the time of its first byte; `lost`
 * on the first line after a place where the reader may have missed output (see
 * {@link LogRecord.lost}).
 */
export type SplitLine = { stream: LogStream; text: string; timeNs: bigint; lost?: true };

/**
 * Splits records into lines per stream, keeping the arrival order of the lines' first bytes. Where
 * a reader marks output as possibly missed (a record with `lost`), the unfinished lines are
 * dropped (their ends are gone), so is the rest of a line the next file begins with, and the
 * next line given is marked `lost`.
 */
export class LineSplitter {
  readonly #partial = new Map<LogStream, { text: string; time: bigint }>();
  readonly #skip: Set<LogStream>;
  #lost = false;

  /** `skipFirst`: streams whose first line is dropped (it began before the bytes read). */
  constructor(skipFirst: Iterable<LogStream> = []) {
    this.#skip = new Set(skipFirst);
  }

  /** Feeds records; returns the lines they complete. */
  push(records: LogRecord[]): SplitLine[] {
    const out: SplitLine[] = [];
    for (const r of records) {
      if (r.lost) {
        this.#partial.clear();
        this.#skip.clear();
        if (r.boundary! & 1) this.#skip.add('stdout');
        if (r.boundary! & 2) this.#skip.add('stderr');
        this.#lost = true;
      }
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
        out.push({
          stream: r.stream,
          text: (pending?.text ?? '') + text.slice(0, nl + 1),
          timeNs: pending?.time ?? r.timeNs,
          ...(this.#lost ? { lost: true as const } : {}),
        });
        this.#lost = false;
        pending = undefined;
        text = text.slice(nl + 1);
      }
      if (text) this.#partial.set(r.stream, { text: (pending?.text ?? '') + text, time: pending?.time ?? r.timeNs });
      else this.#partial.delete(r.stream);
    }
    return out;
  }

  /** The unterminated last lines, at end of output. */
  flush(): SplitLine[] {
    for (const s of this.#skip) this.#partial.delete(s);
    const out: SplitLine[] = [...this.#partial.entries()].map(([stream, p]) => ({
      stream,
      text: p.text,
      timeNs: p.time,
    }));
    this.#partial.clear();
    out.sort((a, b) => (a.timeNs < b.timeNs ? -1 : 1));
    if (this.#lost && out[0]) out[0].lost = true;
    this.#lost = false;
    return out;
  }
}
