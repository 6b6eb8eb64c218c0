/**
 * `engine.events()` with its `{ signal, timeout }`: the event stream of the log, ended by the
 * caller's stop with the call's typed error (`ABORTED`, `TIMEOUT`; see `container/call-stop.ts`),
 * as `logs({ follow: true })` ends; ended by `engine.close()` quietly.
 *
 * @module
 */
import { z } from 'zod';
import { callStop, stopShape, type CallStop, type StopOptions } from './container/call-stop.js';
import { parseOptions } from './events/filter.js';
import type { BerthEvent, EventFilter } from './events/index.js';
import type { EventLog } from './events/event-log.js';
import type { EventStream } from './events/event-stream.js';

/** Options of `engine.events()`: a filter, and when to stop following (`timeout` in ms from the call). */
export interface EventsOptions extends EventFilter, StopOptions {}

const stopSchema = z.strictObject(stopShape);

const WHAT = 'following events';

/** The iterator {@link followEvents} returns: `stream`'s events, then the stop's error if it ended it. */
class StoppableEvents implements AsyncIterableIterator<BerthEvent, undefined> {
  readonly #stream: EventStream;
  readonly #stop: CallStop;
  #over = false;

  constructor(stream: EventStream, stop: CallStop) {
    this.#stream = stream;
    this.#stop = stop;
  }

  async next(): Promise<IteratorResult<BerthEvent, undefined>> {
    const r = await this.#stream.next();
    if (r.done && !this.#over) {
      this.#over = true; // thrown once, then done, as a generator
      this.#stop.throwIfStopped(WHAT);
    }
    return r;
  }

  async return(): Promise<IteratorResult<BerthEvent, undefined>> {
    this.#over = true;
    return this.#stream.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * Follows `log` with `options` until `closing` fires (quietly), or the caller's `signal` or
 * `timeout` (ms) does (the iterator then throws `ABORTED` or `TIMEOUT`; an already-fired signal
 * makes the first `next()` throw).
 *
 * @throws InvalidArgumentError naming the field, at once.
 */
export function followEvents(log: EventLog, options: EventsOptions, closing: AbortSignal): AsyncIterable<BerthEvent> {
  const { signal, timeout, ...filter } = options ?? {};
  const o = parseOptions(stopSchema, {
    ...(signal === undefined ? {} : { signal }),
    ...(timeout === undefined ? {} : { timeout }),
  });
  const stop = callStop(o.signal, o.timeout);
  const ends = stop.signal === undefined ? closing : AbortSignal.any([closing, stop.signal]);
  return new StoppableEvents(log.follow(filter, ends), stop);
}
