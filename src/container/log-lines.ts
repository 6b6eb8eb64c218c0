/**
 * Lines of a container's output log: the splitter that turns records into lines per stream, in
 * the arrival order of each line's first byte.
 *
 * @module
 */
import type { LogRecord, LogStream } from '../runtime/log-format.js';

/** One line as the splitter gives it: its stream, its text and the time of its first byte. */
export type SplitLine = { stream: LogStream; text: string; timeNs: bigint };

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
        out.push({
          stream: r.stream,
          text: (pending?.text ?? '') + text.slice(0, nl + 1),
          timeNs: pending?.time ?? r.timeNs,
        });
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
