/**
 * Reads an encoded `berth-init` plan back (see `encodeInitPlan` in `src/runtime/native-init.ts`),
 * checking its framing as `berth-init` does.
 *
 * @module
 */
import { expect } from 'vitest';
import { NATIVE_PLAN_KEYS, NATIVE_PLAN_MAGIC } from '../../src/runtime/native-init.js';

/** The records of an encoded plan, in order: each its key and its fields. */
export function decodeNativePlan(buf: Buffer): Array<[string, ...string[]]> {
  expect(buf.readUInt32LE(0)).toBe(buf.length - 4);
  const body = buf.subarray(4).toString('utf8');
  expect(body.endsWith('\0')).toBe(true);
  const fields = body.slice(0, -1).split('\0');
  expect(fields.shift()).toBe(NATIVE_PLAN_MAGIC);
  const records: Array<[string, ...string[]]> = [];
  while (fields.length) {
    const key = fields.shift()! as keyof typeof NATIVE_PLAN_KEYS;
    const n = NATIVE_PLAN_KEYS[key];
    expect(n, `known key ${key}`).toBeTypeOf('number');
    records.push([key, ...fields.splice(0, n)]);
  }
  return records;
}
