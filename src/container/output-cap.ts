/**
 * A bounded collector of a process's output: keeps the first (or last) `max` bytes of a stream
 * and says whether anything was dropped, so that an untrusted program cannot fill the engine's
 * memory through `exec`.
 *
 * @module
 */

/** Which part of an over-long stream a {@link CappedOutput} keeps. */
export type KeepPart = 'head' | 'tail';

/** Collects one stream's chunks up to `max` bytes (unbounded without `max`). */
export class CappedOutput {
  readonly #max: number;
  readonly #keep: KeepPart;
  #chunks: Buffer[] = [];
  #length = 0;
  #truncated = false;

  /** A collector keeping `keep` (default the head) of at most `max` bytes (default: no limit). */
  constructor(max = Number.POSITIVE_INFINITY, keep: KeepPart = 'head') {
    this.#max = max;
    this.#keep = keep;
  }

  /** Adds a chunk. */
  push(chunk: Buffer): void {
    if (this.#keep === 'head') {
      const room = this.#max - this.#length;
      if (room <= 0) {
        if (chunk.length > 0) this.#truncated = true;
        return;
      }
      if (chunk.length > room) this.#truncated = true;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.#chunks.push(kept);
      this.#length += kept.length;
      return;
    }
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    while (this.#length > this.#max) {
      const first = this.#chunks[0]!;
      const over = this.#length - this.#max;
      this.#truncated = true;
      if (first.length <= over) {
        this.#chunks.shift();
        this.#length -= first.length;
      } else {
        this.#chunks[0] = first.subarray(over);
        this.#length -= over;
      }
    }
  }

  /** Whether bytes were dropped. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** What was kept, as UTF-8 text (a multi-byte character cut at the edge becomes U+FFFD). */
  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}
