import { describe, expect, it } from 'vitest';
import { containerRecordSchema, initialState } from '../../src/container/record.js';

const shape = containerRecordSchema.out.shape;

describe('record schema: the run time limit', () => {
  it.each([
    ['a record written before it (no field)', undefined, null],
    ['a container without one', null, null],
    ['a limit of 500 ms', 500, 500],
  ])('config.timeout of %s reads as %s', (_, stored, read) => {
    expect(shape.config.shape.timeout.parse(stored)).toBe(read);
  });

  it.each([0, -1, 1.5, '500'])('refuses config.timeout %s', (stored) => {
    expect(shape.config.shape.timeout.safeParse(stored).success).toBe(false);
  });

  it.each([
    ['a record written before it (no field)', undefined, false],
    ['a timed-out run', true, true],
  ])('state.timedOut of %s reads as %s', (_, stored, read) => {
    expect(shape.state.shape.timedOut.parse(stored)).toBe(read);
  });

  it('starts every run with timedOut false', () => {
    expect(initialState().timedOut).toBe(false);
  });
});
