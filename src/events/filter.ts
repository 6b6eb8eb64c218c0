/**
 * Event filters: which events to read or follow, validated with zod before anything is read.
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { EVENT_TYPES, type BerthEvent, type EventType } from './types.js';

/**
 * A point in time: a `Date`; a number of milliseconds since the epoch; an ISO 8601 string
 * (`2024-05-01T12:00:00Z`); or, as `docker events --since 10m`, a duration before now made of
 * `ms`, `s`, `m` and `h` parts (`90s`, `1h30m`).
 */
export type EventTime = Date | number | string;

/** Which events to read; every field is optional and the fields combine with AND. */
export interface EventFilter {
  /** Only events about these kinds of object. */
  type?: EventType | readonly EventType[];
  /** Only these actions (`start`, `die`, …). */
  action?: string | readonly string[];
  /** Only events about these object ids. */
  id?: string | readonly string[];
  /** Only events at or after this time. */
  since?: EventTime;
  /** Only events at or before this time; following stops once it has passed. */
  until?: EventTime;
}

/** An {@link EventFilter} after validation: sets and absolute times. */
export interface NormalizedEventFilter {
  /** Allowed types; undefined allows all. */
  types: ReadonlySet<string> | undefined;
  /** Allowed actions; undefined allows all. */
  actions: ReadonlySet<string> | undefined;
  /** Allowed ids; undefined allows all. */
  ids: ReadonlySet<string> | undefined;
  /** Lower time bound (ms, inclusive), if any. */
  since: number | undefined;
  /** Upper time bound (ms, inclusive), if any. */
  until: number | undefined;
}

const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Converts an {@link EventTime} to milliseconds since the epoch.
 *
 * @returns the time, or a message saying what is wrong with `value`.
 */
export function toEpochMs(value: EventTime, now = Date.now()): number | string {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'invalid Date' : value.getTime();
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0
      ? value
      : 'expected a non-negative number of milliseconds since the epoch';
  }
  const s = value.trim();
  if (DURATION.test(s)) {
    let ms = 0;
    for (const [, n, unit] of s.matchAll(DURATION_PART)) ms += Number(n) * UNIT_MS[unit!]!;
    return now - ms;
  }
  const t = ISO.test(s) ? Date.parse(s) : Number.NaN;
  if (!Number.isNaN(t)) return t;
  return `'${s.slice(0, 40)}' is not a time: use a Date, milliseconds since the epoch, an ISO 8601 string or a duration such as '10m'`;
}

const timeSchema = z.union([z.date(), z.number(), z.string()]).transform((v, ctx) => {
  const t = toEpochMs(v);
  if (typeof t === 'number') return t;
  ctx.addIssue({ code: 'custom', message: t, input: v });
  return z.NEVER;
});

const oneOrMany = <S extends z.ZodType>(s: S) => z.union([s, z.array(s)]);

/** The zod shape of {@link EventFilter}; extend it for options that add fields. */
export const eventFilterShape = {
  type: oneOrMany(z.enum(EVENT_TYPES)).optional(),
  action: oneOrMany(z.string().min(1)).optional(),
  id: oneOrMany(z.string().min(1)).optional(),
  since: timeSchema.optional(),
  until: timeSchema.optional(),
};

/** Validates `input` with `schema`, throwing an {@link InvalidArgumentError} naming the field. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  let issue = r.error.issues[0]!;
  let at = issue.path;
  if (issue.code === 'invalid_union') {
    // A branch that got past the outer type (e.g. the array branch of `string | string[]`) says more.
    const deeper = issue.errors.map((branch) => branch[0]).find((i) => i !== undefined && i.path.length > 0);
    if (deeper !== undefined) {
      at = [...issue.path, ...deeper.path];
      issue = deeper;
    }
  }
  let field = at
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    field = [field, issue.keys[0]].filter(Boolean).join('.');
    message = 'unknown option';
  } else if (issue.code === 'invalid_union') {
    message = 'expected a Date, a number of milliseconds, an ISO 8601 string or a duration such as 10m';
    if (field === 'type' || field === 'action' || field === 'id') message = 'expected a string or an array of strings';
  }
  throw new InvalidArgumentError(field, message, { cause: r.error });
}

const toSet = (v: string | readonly string[] | undefined): ReadonlySet<string> | undefined =>
  v === undefined ? undefined : new Set(typeof v === 'string' ? [v] : v);

/** Turns validated filter fields into a {@link NormalizedEventFilter}. */
export function normalizeFilter(f: {
  type?: string | readonly string[] | undefined;
  action?: string | readonly string[] | undefined;
  id?: string | readonly string[] | undefined;
  since?: number | undefined;
  until?: number | undefined;
}): NormalizedEventFilter {
  return { types: toSet(f.type), actions: toSet(f.action), ids: toSet(f.id), since: f.since, until: f.until };
}

/**
 * Validates an {@link EventFilter}.
 *
 * @throws InvalidArgumentError naming the offending field (`since`, `type[1]`, …).
 */
export function parseEventFilter(input: EventFilter | undefined): NormalizedEventFilter {
  return normalizeFilter(parseOptions(z.strictObject(eventFilterShape), input));
}

/** Whether `e` passes `f`. */
export function matchesEvent(e: BerthEvent, f: NormalizedEventFilter): boolean {
  return (
    (f.types === undefined || f.types.has(e.type)) &&
    (f.actions === undefined || f.actions.has(e.action)) &&
    (f.ids === undefined || f.ids.has(e.id)) &&
    (f.since === undefined || e.time >= f.since) &&
    (f.until === undefined || e.time <= f.until)
  );
}
