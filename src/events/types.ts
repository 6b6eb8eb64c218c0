/**
 * The shape of berth's events, as Docker's `docker events` reports them.
 *
 * @module
 */
import { z } from 'zod';

/** The kinds of object that events are about. */
export const EVENT_TYPES = ['container', 'image', 'volume', 'network'] as const;

/** The kind of object an event is about. */
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * One event: something happened to an object.
 *
 * `time` is in milliseconds since the epoch, from the clock of the process that appended it;
 * events are delivered in the order they were written to the log, which across processes may
 * differ from the order of their `time` by a few milliseconds. (No `timeNano`: nanoseconds since
 * the epoch do not fit a JSON number, and the log's order is the precise one.)
 */
export interface BerthEvent {
  /** What kind of object the event is about. */
  type: EventType;
  /** What happened, in Docker's words: `create`, `start`, `die`, `pull`, `tag`, `destroy`, … */
  action: string;
  /** The object's id (full id for containers and images, name for volumes and networks). */
  id: string;
  /** Extra facts, as Docker's `Actor.Attributes`: `name`, `image`, `exitCode`, labels, … Empty when none. */
  attributes: Record<string, string>;
  /** When it happened, in milliseconds since the epoch. */
  time: number;
}

/** What {@link EventLog.append} accepts: an event whose `time` and `attributes` may be omitted. */
export interface EventInput {
  /** What kind of object the event is about. */
  type: EventType;
  /** What happened. */
  action: string;
  /** The object's id. */
  id: string;
  /** Extra facts. Default `{}`. */
  attributes?: Record<string, string>;
  /** When it happened (ms since epoch). Default: now. */
  time?: number;
}

/** Validates an {@link EventInput}. */
export const eventInputSchema = z.strictObject({
  type: z.enum(EVENT_TYPES),
  action: z.string().min(1).max(128),
  id: z.string().min(1).max(1024),
  attributes: z.record(z.string(), z.string()).optional(),
  time: z.number().finite().nonnegative().optional(),
});

/**
 * Checks a parsed log line cheaply (no zod: every follower runs this on every line).
 *
 * @returns the event, or undefined when the value is not one.
 */
export function asEvent(value: unknown): BerthEvent | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    typeof v.type !== 'string' ||
    !(EVENT_TYPES as readonly string[]).includes(v.type) ||
    typeof v.action !== 'string' ||
    typeof v.id !== 'string' ||
    typeof v.time !== 'number' ||
    typeof v.attributes !== 'object' ||
    v.attributes === null
  ) {
    return undefined;
  }
  return {
    type: v.type as EventType,
    action: v.action,
    id: v.id,
    attributes: v.attributes as Record<string, string>,
    time: v.time,
  };
}
