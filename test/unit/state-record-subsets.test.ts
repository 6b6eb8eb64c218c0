/**
 * RecordStore subsets (`subsets.ts`): `list({ subset })` returns exactly the records of the
 * subset, reading no other record; an index that is missing, or has extra or wrong entries (a
 * crash between a record and its entry), is detected, rebuilt or repaired, never trusted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidArgumentError } from '../../src/errors.js';
import { RecordStore } from '../../src/state/record-store.js';
import { tempDir } from '../helpers/tmp.js';

const Rec = z.object({ id: z.string(), on: z.boolean(), n: z.number().int() });
type Rec = z.infer<typeof Rec>;
const subsets = { on: (r: Rec) => r.on };

function store(dir = path.join(tempDir('subsets'), 'records'), grace?: number): RecordStore<Rec> {
  return new RecordStore<Rec>({
    dir,
    fsync: false,
    schema: Rec,
    subsets,
    ...(grace === undefined ? {} : { danglingNameGraceMs: grace }),
  });
}

const ids = (recs: Rec[]) => recs.map((r) => r.id).sort();
const on = async (s: RecordStore<Rec>) => ids((await s.list()).filter((r) => r.on));
const entries = (s: RecordStore<Rec>) =>
  fs
    .readdirSync(path.join(s.dir, 'subsets', 'on'))
    .filter((n) => !n.startsWith('.'))
    .sort();

describe('RecordStore subsets', () => {
  it('lists exactly the records of the subset through random creates, updates and deletes', async () => {
    const s = store();
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const live = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const r = random();
      const id = `r${Math.floor(random() * 60)}`;
      if (!live.has(id)) {
        await s.create(id, { id, on: random() < 0.3, n: 0 });
        live.add(id);
      } else if (r < 0.7) await s.update(id, (x) => ({ ...x, on: random() < 0.5, n: x.n + 1 }));
      else {
        await s.delete(id);
        live.delete(id);
      }
      if (i % 20 === 0) expect(ids(await s.list({ subset: 'on' }))).toEqual(await on(s));
    }
    expect(ids(await s.list({ subset: 'on' }))).toEqual(await on(s));
    expect(entries(s)).toEqual(await on(s)); // no extra entry left by a store that did not crash
  });

  it('reads no record outside the subset', async () => {
    const s = store();
    for (let i = 0; i < 50; i++) await s.create(`r${i}`, { id: `r${i}`, on: i % 10 === 0, n: 0 });
    expect(ids(await s.list({ subset: 'on' }))).toEqual(['r0', 'r10', 'r20', 'r30', 'r40']);
    for (let i = 0; i < 50; i++) if (i % 10 !== 0) fs.writeFileSync(path.join(s.dir, `r${i}.json`), '{"corrupt');
    const reported: unknown[] = [];
    const onCorrupt = (m: unknown): void => void reported.push(m);
    subscribe('berth:state:corrupt', onCorrupt);
    try {
      expect(ids(await s.list({ subset: 'on' }))).toEqual(['r0', 'r10', 'r20', 'r30', 'r40']);
      expect(reported).toEqual([]);
      expect(await s.list()).toHaveLength(5);
      expect(reported).toHaveLength(45);
    } finally {
      unsubscribe('berth:state:corrupt', onCorrupt);
    }
  });

  it('builds the index once from every record when there is none (a store written before the subset existed, or its index deleted)', async () => {
    const dir = path.join(tempDir('subsets'), 'records');
    const plain = new RecordStore<Rec>({ dir, fsync: false, schema: Rec });
    for (let i = 0; i < 20; i++) await plain.create(`r${i}`, { id: `r${i}`, on: i % 3 === 0, n: 0 });
    const s = store(dir);
    const expected = ['r0', 'r12', 'r15', 'r18', 'r3', 'r6', 'r9'];
    expect(ids(await s.list({ subset: 'on' }))).toEqual(expected);
    expect(entries(s)).toEqual(expected);
    fs.rmSync(path.join(dir, 'subsets'), { recursive: true });
    expect(ids(await s.list({ subset: 'on' }))).toEqual(expected);
    expect(entries(s)).toEqual(expected);
  });

  it('skips and deletes extra entries: of a record that left the subset, of a missing record past the grace period', async () => {
    const s = store(undefined, 50);
    await s.create('a', { id: 'a', on: true, n: 0 });
    await s.create('b', { id: 'b', on: false, n: 0 });
    await s.list({ subset: 'on' }); // built
    const dir = path.join(s.dir, 'subsets', 'on');
    fs.writeFileSync(path.join(dir, 'b'), ''); // as if killed after writing b and before deleting its entry
    fs.writeFileSync(path.join(dir, 'gone'), ''); // as if killed after deleting record 'gone'
    fs.writeFileSync(path.join(dir, 'creating'), ''); // a create in another process, its record not yet written
    fs.utimesSync(path.join(dir, 'gone'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    fs.writeFileSync(path.join(dir, 'not an id!'), '');
    expect(ids(await s.list({ subset: 'on' }))).toEqual(['a']);
    expect(fs.readdirSync(dir).sort()).toEqual(['.built', 'a', 'creating', 'not an id!']);
  });

  it('leaves an extra entry, never a missing one, wherever a writer stops (an entry that cannot be made stops the write)', async () => {
    const s = store();
    await s.create('a', { id: 'a', on: false, n: 0 });
    await s.list({ subset: 'on' });
    const dir = path.join(s.dir, 'subsets', 'on');
    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, ''); // no entry can be made under it
    await expect(s.update('a', (r) => ({ ...r, on: true }))).rejects.toMatchObject({ code: expect.any(String) });
    expect((await s.get('a'))?.on).toBe(false); // the record was not written without its entry
  });

  it('refuses an unknown subset', async () => {
    await expect(store().list({ subset: 'off' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
