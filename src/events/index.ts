/**
 * The event log and its consumers: {@link EventLog} (append, read, follow across processes)
 * and {@link EventHub} (the same events through an EventEmitter).
 *
 * @module
 */
export { EVENT_TYPES, eventInputSchema, asEvent, type BerthEvent, type EventInput, type EventType } from './types.js';
export {
  matchesEvent,
  parseEventFilter,
  toEpochMs,
  type EventFilter,
  type EventTime,
  type NormalizedEventFilter,
} from './filter.js';
export {
  EventLog,
  MAX_EVENT_BYTES,
  eventChannel,
  type EventLogOptions,
  type FollowOptions,
  type SubscribeOptions,
} from './event-log.js';
export { EventStream, type EventSource } from './event-stream.js';
export { EventHub, type EventHubEvents } from './event-hub.js';
