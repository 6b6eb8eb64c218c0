import fs from 'node:fs';
import path from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BerthError, ConflictError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { decodeName, encodeName } from '../../src/state/names.js';
import { RecordStore } from '../../src/state/record-store.js';
import { tempDir } from '../helpers/tmp.js';

const Rec = z.object({ id: z.string(), n: z.number().int() });
type Rec = z.infer<typeof Rec>;

function store(options: { schema?: boolean; grace?: number } = {}): RecordStore<Rec> {
  return new RecordStore<Rec>({
    dir: path.join(tempDir('store'), 'containers'),
    kind: 'container',
    fsync: false,
    ...(options.schema === false ? {} : { schema: Rec }),
    ...(options.grace === undefined ? {} : { danglingNameGraceMs: options.grace }),
  });
}

describe('RecordStore records', () => {
  it('creates, reads, lists, updates and deletes', async () => {
    const s = store();
    expect(await s.list()).toEqual([]);
    expect(await s.create('a1', { id: 'a1', n: 1 })).toEqual({ id: 'a1', n: 1 });
    await s.create('b2', { id: 'b2', n: 2 });
    expect(await s.get('a1')).toEqual({ id: 'a1', n: 1 });
    expect(await s.get('zz')).toBeUndefined();
    expect(await s.has('b2')).toBe(true);
    expect((await s.list()).map((r) => r.id).sort()).toEqual(['a1', 'b2']);
    expect(await s.update('a1', (r) => ({ ...r, n: r.n + 10 }))).toEqual({ id: 'a1', n: 11 });
    expect(await s.get('a1')).toEqual({ id: 'a1', n: 11 });
    expect(await s.delete('a1')).toBe(true);
    expect(await s.delete('a1')).toBe(false);
    expect(await s.ids()).toEqual(['b2']);
    expect(fs.readdirSync(s.dir).sort()).toEqual(['b2.json']); // no lock or temp file left
  });

  it('refuses to create a record twice', async () => {
    const s = store();
    await s.create('a1', { id: 'a1', n: 1 });
    const err = await s.create('a1', { id: 'a1', n: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'CONFLICT' });
    expect(await s.get('a1')).toEqual({ id: 'a1', n: 1 });
  });

  it('validates a text once: unchanged reads skip the schema, a changed file is validated again', async () => {
    let checks = 0;
    const Counted = Rec.superRefine(() => {
      checks++;
    });
    const s = new RecordStore<Rec>({
      dir: path.join(tempDir('store'), 'containers'),
      kind: 'container',
      fsync: false,
      schema: Counted as never,
    });
    await s.create('a1', { id: 'a1', n: 1 });
    const afterWrite = checks;
    for (let i = 0; i < 3; i++) expect(await s.get('a1')).toEqual({ id: 'a1', n: 1 });
    expect(checks).toBe(afterWrite);
    // Another writer: a valid change is validated once, an invalid one is refused every time.
    const file = path.join(s.dir, 'a1.json');
    fs.writeFileSync(file, JSON.stringify({ id: 'a1', n: 2, extra: true }));
    expect(await s.get('a1')).toEqual({ id: 'a1', n: 2 });
    expect(await s.get('a1')).toEqual({ id: 'a1', n: 2 });
    expect(checks).toBe(afterWrite + 1);
    fs.writeFileSync(file, JSON.stringify({ id: 'a1', n: 'x' }));
    await expect(s.get('a1')).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(s.get('a1')).rejects.toMatchObject({ code: 'INTERNAL' });
    // A caller that changes what it got does not change what the next read returns.
    fs.writeFileSync(file, JSON.stringify({ id: 'a1', n: 3 }));
    const got = (await s.get('a1'))!;
    got.n = 99;
    expect(await s.get('a1')).toEqual({ id: 'a1', n: 3 });
  });

  it('writes nothing when the update function returns the record it got', async () => {
    const s = store();
    await s.create('a1', { id: 'a1', n: 1 });
    const file = path.join(s.dir, 'a1.json');
    const before = fs.statSync(file).ino;
    expect(await s.update('a1', (r) => r)).toEqual({ id: 'a1', n: 1 });
    expect(fs.statSync(file).ino).toBe(before);
    await s.update('a1', (r) => ({ ...r }));
    expect(fs.statSync(file).ino).not.toBe(before);
  });

  it('reports a missing record on update with the store kind, and leaves no lock file', async () => {
    const s = store();
    const err = await s.update('nope', (r) => r).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: 'CONTAINER_NOT_FOUND', message: "container 'nope' not found" });
    expect(fs.existsSync(path.join(s.dir, 'nope.lock'))).toBe(false);
  });

  it('keeps the record unchanged when the update function throws', async () => {
    const s = store();
    await s.create('a1', { id: 'a1', n: 1 });
    await expect(s.update('a1', () => Promise.reject(new Error('nope')))).rejects.toThrow('nope');
    expect(await s.get('a1')).toEqual({ id: 'a1', n: 1 });
  });

  it('serializes concurrent updates in one process', async () => {
    const s = store();
    await s.create('c', { id: 'c', n: 0 });
    await Promise.all(Array.from({ length: 100 }, () => s.update('c', async (r) => ({ ...r, n: r.n + 1 }))));
    expect((await s.get('c'))?.n).toBe(100);
  });

  it('validates records on write and on read', async () => {
    const s = store();
    const err = await s.create('a1', { id: 'a1', n: 1.5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ field: 'n' });
    expect(await s.has('a1')).toBe(false);
    fs.mkdirSync(s.dir, { recursive: true });
    fs.writeFileSync(path.join(s.dir, 'bad.json'), '{"id":"bad","n":"x"}');
    await expect(s.get('bad')).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('never lists temp files, lock files or corrupt records', async () => {
    const s = store();
    await s.create('ok', { id: 'ok', n: 1 });
    fs.writeFileSync(path.join(s.dir, '.ok.json.tmp-1a-2b'), '{"id":"half');
    fs.writeFileSync(path.join(s.dir, 'ok.lock'), '');
    fs.writeFileSync(path.join(s.dir, 'broken.json'), '{"id":');
    const reported: unknown[] = [];
    const onCorrupt = (m: unknown): void => void reported.push(m);
    subscribe('berth:state:corrupt', onCorrupt);
    try {
      expect(await s.list()).toEqual([{ id: 'ok', n: 1 }]);
    } finally {
      unsubscribe('berth:state:corrupt', onCorrupt);
    }
    expect(reported).toHaveLength(1);
    expect(String((reported[0] as { file: string }).file)).toContain('broken.json');
    await expect(s.get('broken')).rejects.toBeInstanceOf(BerthError);
  });

  it('rejects ids that are not safe file names', async () => {
    const s = store();
    for (const id of ['', '../x', '.hidden', 'a/b', 'x'.repeat(201)]) {
      await expect(s.get(id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'id' });
    }
  });
});

describe('RecordStore names', () => {
  it('reserves, resolves and releases names', async () => {
    const s = store();
    await s.create('abc123', { id: 'abc123', n: 0 });
    await s.reserveName('web', 'abc123');
    await s.reserveName('web', 'abc123'); // idempotent for the holder
    expect(await s.resolveName('web')).toBe('abc123');
    const err = await s.reserveName('web', 'def456').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'NAME_CONFLICT' });
    expect((err as Error).message).toContain("container name 'web' is already in use by container abc123");
    expect(await s.releaseName('web', 'def456')).toBe(false);
    expect(await s.releaseName('web', 'abc123')).toBe(true);
    expect(await s.resolveName('web')).toBeUndefined();
    await s.reserveName('web', 'def456');
    expect(await s.names.entries()).toEqual(new Map([['web', 'def456']]));
  });

  it('gives exactly one of many concurrent reservers the name', async () => {
    const s = store();
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => s.reserveName('db', `id${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('stores any name as a safe file name', () => {
    for (const name of ['web', 'my_app.v2-1', '.hidden', '..', 'a/b', 'ünï cødé', 'x%41']) {
      const enc = encodeName(name);
      expect(enc).toMatch(/^[A-Za-z0-9_%-][A-Za-z0-9_.%-]*$/);
      expect(decodeName(enc)).toBe(name);
    }
    expect(encodeName('web')).toBe('web');
    expect(() => encodeName('')).toThrow(InvalidArgumentError);
  });

  it('reclaims a name whose holder is gone, after the grace period', async () => {
    const s = store({ grace: 0 });
    await s.reserveName('web', 'ghost'); // no record 'ghost' exists
    await s.reserveName('web', 'alive');
    expect(await s.resolveName('web')).toBe('alive');
    const strict = store({ grace: 60_000 });
    await strict.reserveName('web', 'ghost');
    await expect(strict.reserveName('web', 'other')).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
  });
});

describe('RecordStore.resolve', () => {
  it('finds by exact name, then exact id, then unique id prefix', async () => {
    const s = store();
    for (const id of ['aaa111', 'aaa222', 'bbb333']) await s.create(id, { id, n: 0 });
    await s.reserveName('bbb333', 'aaa111'); // a name that looks like another record's id wins
    expect(await s.resolve('bbb333')).toBe('aaa111');
    expect(await s.resolve('aaa222')).toBe('aaa222');
    expect(await s.resolve('bbb')).toBe('bbb333');
    expect(await s.resolve('aaa1')).toBe('aaa111');
    const amb = await s.resolve('aaa').catch((e: unknown) => e);
    expect(amb).toBeInstanceOf(InvalidArgumentError);
    expect((amb as Error).message).toContain('matches 2 containers');
    await expect(s.resolve('ccc')).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    await expect(s.resolve('')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('ignores a name whose record is gone', async () => {
    const s = store();
    await s.create('abc', { id: 'abc', n: 0 });
    await s.reserveName('web', 'gone');
    await expect(s.resolve('web')).rejects.toBeInstanceOf(NotFoundError);
  });
});
