/**
 * The async iterator behind {@link EventLog.follow}.
 *
 * It is a hand-written iterator rather than an async generator so that {@link EventStream.return}
 * works at any time: a generator's `return()` waits behind a pending `next()`, which for a quiet
 * log means forever; here it settles the pending `next()` with `done` and stops at once.
 *
 * @module
 */
import type { BerthError } from '../errors.js';
import { matchesEvent, type NormalizedEventFilter } from './filter.js';
import type { LogCursor } from './log-tailer.js';
import type { BerthEvent } from './types.js';

/** What an {@link EventStream} reads from: provided by {@link EventLog}. */
export interface EventSource {
  /** Every past event and the cursor just after them. */
  snapshot(): Promise<{ events: BerthEvent[]; cursor: LogCursor }>;
  /** Starts tailing from `cursor`; returns how to stop. */
  tail(
    cursor: LogCursor,
    keepAlive: boolean,
    handlers: { onEvents(events: BerthEvent[]): void; onError(error: BerthError): void },
  ): { close(): void };
}

interface Waiter {
  resolve(r: IteratorResult<BerthEvent, undefined>): void;
  reject(e: unknown): void;
}

const DONE: IteratorResult<BerthEvent, undefined> = { done: true, value: undefined };

/**
 * A live sequence of events: past ones (from `since`) then new ones, until `until` passes, the
 * signal aborts, or {@link EventStream.return} is called. Iterate it with `for await`; breaking
 * out of the loop stops it.
 */
export class EventStream implements AsyncIterableIterator<BerthEvent, undefined>, AsyncDisposable {
  readonly #source: EventSource;
  readonly #filter: NormalizedEventFilter;
  readonly #keepAlive: boolean;
  readonly #signal: AbortSignal | undefined;
  #cursor: LogCursor | undefined;
  #queue: BerthEvent[] = [];
  #waiters: Waiter[] = [];
  #started = false;
  #ended = false;
  #failure: BerthError | undefined;
  #tail: { close(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = (): void => void this.return();

  /**
   * Creates a stream; nothing is read until the first {@link EventStream.next}. Use
   * {@link EventLog.follow} rather than this constructor.
   *
   * @param start - where live events start; undefined to read past events (from `filter.since`) first
   */
  constructor(
    source: EventSource,
    filter: NormalizedEventFilter,
    start: LogCursor | undefined,
    keepAlive: boolean,
    signal?: AbortSignal,
  ) {
    this.#source = source;
    this.#filter = filter;
    this.#cursor = start;
    this.#keepAlive = keepAlive;
    this.#signal = signal;
  }

  /** Resolves with the next event, or `done` once the stream has ended. */
  next(): Promise<IteratorResult<BerthEvent, undefined>> {
    if (!this.#started) this.#start();
    const e = this.#queue.shift();
    if (e !== undefined) return Promise.resolve({ done: false, value: e });
    if (this.#failure !== undefined) {
      const failure = this.#failure;
      this.#failure = undefined;
      this.#stop();
      return Promise.reject(failure);
    }
    if (this.#ended) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Stops the stream now; a pending {@link next} resolves with `done`. */
  async return(): Promise<IteratorResult<BerthEvent, undefined>> {
    this.#queue = [];
    this.#stop();
    return DONE;
  }

  /** Same as {@link return}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  /** The stream is its own iterator: `for await (const e of stream)`. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  #start(): void {
    this.#started = true;
    if (this.#signal?.aborted) return this.#stop();
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (this.#cursor !== undefined) return this.#live(this.#cursor);
    this.#source.snapshot().then(
      ({ events, cursor }) => {
        if (this.#ended) return;
        this.#push(events);
        this.#live(cursor);
      },
      (e: BerthError) => this.#fail(e),
    );
  }

  #live(cursor: LogCursor): void {
    const { until } = this.#filter;
    if (until !== undefined && until < Date.now()) return this.#stop();
    if (until !== undefined) this.#timer = setTimeout(() => this.#stop(), until - Date.now() + 1);
    this.#tail = this.#source.tail(cursor, this.#keepAlive, {
      onEvents: (events) => this.#push(events),
      onError: (e) => this.#fail(e),
    });
  }

  #push(events: BerthEvent[]): void {
    for (const e of events) {
      if (!matchesEvent(e, this.#filter)) continue;
      const w = this.#waiters.shift();
      if (w !== undefined) w.resolve({ done: false, value: e });
      else this.#queue.push(e);
    }
  }

  #fail(e: BerthError): void {
    const w = this.#waiters.shift();
    if (w === undefined) {
      this.#failure = e;
      return;
    }
    w.reject(e);
    this.#stop();
  }

  /** No more events will come; what is queued is still delivered. */
  #stop(): void {
    this.#ended = true;
    this.#tail?.close();
    this.#tail = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const w of this.#waiters.splice(0)) w.resolve(DONE);
  }
}
