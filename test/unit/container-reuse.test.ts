/**
 * The spec hash of `Container.getOrCreate`: the same for the same normalized create options
 * (key order, units, the name, an omitted `detach`), different when a setting differs; and the
 * stable JSON it is taken of.
 */
import { describe, expect, it } from 'vitest';
import { reuseSpec, SPEC_HASH_LABEL, stableJson, type ReuseSpec } from '../../src/container/reuse.js';

const BASE: ReuseSpec = { name: 'db', image: 'busybox', command: ['sleep', '60'], env: { A: '1' } };

describe('getOrCreate spec hash', () => {
  it.each<[string, ReuseSpec]>([
    ['keys in another order', { env: { A: '1' }, command: ['sleep', '60'], image: 'busybox', name: 'db' }],
    ['another name', { ...BASE, name: 'other' }],
    ['detach given as its default', { ...BASE, detach: true }],
    ['a stale hash label given', { ...BASE, labels: { [SPEC_HASH_LABEL]: 'x' } }],
    ['an empty label set', { ...BASE, labels: {} }],
  ])('is the same with %s', (_, spec) => {
    expect(reuseSpec(spec).hash).toBe(reuseSpec(BASE).hash);
  });

  it.each<[string, ReuseSpec]>([
    ['another command', { ...BASE, command: ['sleep', '61'] }],
    ['another environment', { ...BASE, env: { A: '2' } }],
    ['a label', { ...BASE, labels: { team: 'a' } }],
    ['detach false', { ...BASE, detach: false }],
    ['a published port', { ...BASE, ports: ['80'] }],
  ])('differs with %s', (_, spec) => {
    expect(reuseSpec(spec).hash).not.toBe(reuseSpec(BASE).hash);
  });

  it('normalizes units: a memory limit of 256m and of its bytes hash alike', () => {
    expect(reuseSpec({ ...BASE, resources: { memory: '256m' } }).hash).toBe(
      reuseSpec({ ...BASE, resources: { memory: 256 * 1024 * 1024 } }).hash,
    );
  });

  it('records the hash as a label beside the user labels, and detaches by default', () => {
    const { options, hash } = reuseSpec({ ...BASE, labels: { team: 'a' } });
    expect(options.labels).toEqual({ team: 'a', [SPEC_HASH_LABEL]: hash });
    expect(options.detach).toBe(true);
    expect(options.name).toBe('db');
  });

  it('refuses a spec without a name or with invalid options, naming the field', () => {
    expect(() => reuseSpec({ image: 'busybox' } as ReuseSpec)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'name' }),
    );
    expect(() => reuseSpec({ ...BASE, workdir: 'relative' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'workdir' }),
    );
  });

  it.each([
    [{ b: 1, a: [2, { d: undefined, c: 'x' }] }, '{"a":[2,{"c":"x"}],"b":1}'],
    [[undefined, null], '[null,null]'],
    ['s', '"s"'],
  ])('stableJson(%j) is %s', (value, json) => {
    expect(stableJson(value)).toBe(json);
  });
});
