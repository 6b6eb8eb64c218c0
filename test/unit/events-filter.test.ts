import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { matchesEvent, parseEventFilter, toEpochMs, type EventFilter } from '../../src/events/filter.js';
import type { BerthEvent } from '../../src/events/types.js';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);

describe('toEpochMs', () => {
  it.each([
    ['a Date', new Date(NOW), NOW],
    ['milliseconds', NOW, NOW],
    ['an ISO string', '2024-05-01T12:00:00Z', NOW],
    ['an ISO string with offset', '2024-05-01T14:00:00+02:00', NOW],
    ['an ISO date', '2024-05-01', Date.UTC(2024, 4, 1)],
    ['a duration in minutes', '10m', NOW - 600_000],
    ['a compound duration', '1h30m', NOW - 5_400_000],
    ['a duration in ms', '250ms', NOW - 250],
  ] as const)('accepts %s', (_title, input, expected) => {
    expect(toEpochMs(input, NOW)).toBe(expected);
  });

  it.each([
    ['an invalid Date', new Date('nope')],
    ['a negative number', -1],
    ['NaN', Number.NaN],
    ['a bare number string', '1700000000'],
    ['garbage', 'yesterday'],
  ] as const)('rejects %s with a message', (_title, input) => {
    expect(typeof toEpochMs(input, NOW)).toBe('string');
  });
});

describe('parseEventFilter', () => {
  it('normalises types, actions and ids into sets, and times into ms', () => {
    const f = parseEventFilter({ type: 'container', action: ['start', 'die'], since: new Date(NOW), until: NOW + 1 });
    expect(f.types).toEqual(new Set(['container']));
    expect(f.actions).toEqual(new Set(['start', 'die']));
    expect(f.ids).toBeUndefined();
    expect(f.since).toBe(NOW);
    expect(f.until).toBe(NOW + 1);
    expect(parseEventFilter(undefined).types).toBeUndefined();
  });

  it.each([
    [{ since: 'soon' }, 'since'],
    [{ until: {} }, 'until'],
    [{ type: ['container', 'pod'] }, 'type[1]'],
    [{ type: 'pod' }, 'type'],
    [{ action: [''] }, 'action[0]'],
    [{ filters: { x: 1 } }, 'filters'],
  ] as const)('rejects %j naming %s', (input, field) => {
    let err: unknown;
    try {
      parseEventFilter(input as unknown as EventFilter);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe(field);
  });
});

describe('matchesEvent', () => {
  const e: BerthEvent = { type: 'container', action: 'start', id: 'abc', attributes: {}, time: NOW };
  it.each([
    [{}, true],
    [{ type: 'container' }, true],
    [{ type: 'image' }, false],
    [{ action: ['die', 'start'] }, true],
    [{ action: 'die' }, false],
    [{ id: 'abc' }, true],
    [{ id: 'abd' }, false],
    [{ since: NOW }, true],
    [{ since: NOW + 1 }, false],
    [{ until: NOW }, true],
    [{ until: NOW - 1 }, false],
  ] as const)('%j → %s', (filter, expected) => {
    expect(matchesEvent(e, parseEventFilter(filter as EventFilter))).toBe(expected);
  });
});
