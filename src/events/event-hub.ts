/**
 * The engine's events as an EventEmitter (eventemitter3): `engine.on('container', e => …)`.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type { BerthError } from '../errors.js';
import type { EventLog } from './event-log.js';
import type { BerthEvent } from './types.js';

/** The events an {@link EventHub} emits, with their listener signatures. */
export interface EventHubEvents {
  /** An event about a container. */
  container: (event: BerthEvent) => void;
  /** An event about an image. */
  image: (event: BerthEvent) => void;
  /** An event about a volume. */
  volume: (event: BerthEvent) => void;
  /** An event about a network. */
  network: (event: BerthEvent) => void;
  /** Every event, whatever its type (emitted after the type's own). */
  event: (event: BerthEvent) => void;
  /** The log could not be read; following goes on. */
  error: (error: BerthError) => void;
}

type Name = EventEmitter.EventNames<EventHubEvents>;
type Listener<T extends Name> = EventEmitter.EventListener<EventHubEvents, T>;

/**
 * Emits every event appended to an event log after the first listener is added, by any
 * process sharing the root, including this one (exactly once: they all come through the log).
 *
 * Following starts when the first listener (other than for `error`) is added and stops when the
 * last one is removed. It never keeps the process alive by itself.
 *
 * @example
 * ```ts
 * const hub = new EventHub(new EventLog('/var/lib/berth'));
 * const onContainer = (e: BerthEvent) => console.log(e.action, e.id);
 * hub.on('container', onContainer);
 * // …
 * hub.off('container', onContainer); // the last listener: following stops
 * ```
 */
export class EventHub extends EventEmitter<EventHubEvents> {
  readonly #log: EventLog;
  #unsubscribe: (() => void) | undefined;

  /**
   * Creates a hub over `log`; it reads nothing until a listener is added.
   * @internal
   */
  constructor(log: EventLog) {
    super();
    this.#log = log;
  }

  /** Whether the hub is following the log now. */
  get following(): boolean {
    return this.#unsubscribe !== undefined;
  }

  /** Adds a listener; the first one (other than for `error`) starts following the log. */
  override on<T extends Name>(event: T, fn: Listener<T>, context?: unknown): this {
    super.on(event, fn, context);
    this.#sync();
    return this;
  }

  /** Same as {@link EventHub.on}. */
  override addListener<T extends Name>(event: T, fn: Listener<T>, context?: unknown): this {
    return this.on(event, fn, context);
  }

  /** Adds a listener called once; may start following, like {@link EventHub.on}. */
  override once<T extends Name>(event: T, fn: Listener<T>, context?: unknown): this {
    super.once(event, fn, context);
    this.#sync();
    return this;
  }

  /** Removes a listener; when none is left (other than for `error`), following stops. */
  override removeListener<T extends Name>(event: T, fn?: Listener<T>, context?: unknown, once?: boolean): this {
    super.removeListener(event, fn, context, once);
    this.#sync();
    return this;
  }

  /** Same as {@link EventHub.removeListener}. */
  override off<T extends Name>(event: T, fn?: Listener<T>, context?: unknown, once?: boolean): this {
    return this.removeListener(event, fn, context, once);
  }

  /** Removes all listeners, or those of `event`; following stops when none is left. */
  override removeAllListeners(event?: Name): this {
    super.removeAllListeners(event);
    this.#sync();
    return this;
  }

  #sync(): void {
    const wanted = this.eventNames().some((n) => n !== 'error');
    if (wanted && this.#unsubscribe === undefined) {
      this.#unsubscribe = this.#log.subscribe(
        (e) => {
          this.emit(e.type, e);
          this.emit('event', e);
        },
        { onError: (err) => this.emit('error', err) },
      );
    } else if (!wanted && this.#unsubscribe !== undefined) {
      this.#unsubscribe();
      this.#unsubscribe = undefined;
    }
  }
}
