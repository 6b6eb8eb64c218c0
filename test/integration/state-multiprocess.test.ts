/**
 * The state primitives under several real processes: concurrent read-modify-write, name races,
 * and writers killed with SIGKILL at arbitrary points.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isTempFileName } from '../../src/state/atomic.js';
import { RecordStore } from '../../src/state/record-store.js';
import { tempDir } from '../helpers/tmp.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const children = new Set<ChildProcess>();

interface Child {
  proc: ChildProcess;
  /** Resolves with the next line the child prints. */
  line(): Promise<string>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/**
 * Starts `source` (TypeScript, ESM) as a child process with `args`, as `node --import tsx`: the
 * `tsx` command would run the script in a grandchild, out of reach of our SIGKILL.
 */
function child(dir: string, source: string, args: string[]): Child {
  const script = path.join(dir, `child-${children.size}-${Math.random().toString(36).slice(2)}.mts`);
  fs.writeFileSync(script, source.replaceAll('@src', path.join(REPO, 'src')));
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(proc);
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  void exited.then(() => children.delete(proc));
  return {
    proc,
    exited,
    line: () => (lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r))),
  };
}

afterEach(() => {
  for (const p of children) p.kill('SIGKILL');
  children.clear();
});

const HAMMER = `
import { RecordStore } from '@src/state/record-store.ts';
const [dir, worker, count, shared] = process.argv.slice(2);
const store = new RecordStore<{ id: string; n: number; by: string }>({ dir });
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
const won: number[] = [];
for (let i = 0; i < Number(count); i++) {
  await store.update('counter', (r) => ({ ...r, n: r.n + 1, by: worker }));
  await store.reserveName('w' + worker + '-' + i, 'id' + worker);
  if (i < Number(shared)) {
    try {
      await store.reserveName('shared-' + i, 'id' + worker);
      won.push(i);
    } catch (e) {
      if ((e as { code?: string }).code !== 'NAME_CONFLICT') throw e;
    }
  }
}
console.log(JSON.stringify(won));
process.stdin.destroy();
`;

describe('RecordStore across processes', () => {
  it('4 processes × 200 updates and name reservations: exact count, one winner per name, no corrupt file', async () => {
    const dir = tempDir('state-mp');
    const records = path.join(dir, 'records');
    const store = new RecordStore<{ id: string; n: number; by: string }>({ dir: records });
    await store.create('counter', { id: 'counter', n: 0, by: 'test' });
    const workers = Array.from({ length: 4 }, (_, w) => child(dir, HAMMER, [records, String(w), '200', '50']));
    for (const w of workers) expect(await w.line()).toBe('ready');
    for (const w of workers) w.proc.stdin!.write('go\n');

    let last = 0;
    let reads = 0;
    const results = Promise.all(workers.map(async (w) => JSON.parse(await w.line()) as number[]));
    let done = false;
    void results.finally(() => (done = true));
    while (!done) {
      const r = await store.get('counter'); // lock-free reads see whole records only
      expect(r?.n).toBeGreaterThanOrEqual(last);
      last = r!.n;
      reads++;
      await sleep(1);
    }
    const won = await results;
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0, 0, 0]);

    expect((await store.get('counter'))?.n).toBe(800);
    expect(reads).toBeGreaterThan(0);
    for (let i = 0; i < 50; i++) {
      const winners = won.flatMap((list, w) => (list.includes(i) ? [w] : []));
      expect(winners).toHaveLength(1);
      expect(await store.resolveName(`shared-${i}`)).toBe(`id${winners[0]}`);
    }
    expect((await store.names.entries()).size).toBe(800 + 50);
    for (const f of fs.readdirSync(records)) {
      expect(isTempFileName(f)).toBe(false);
      if (f.endsWith('.json')) JSON.parse(fs.readFileSync(path.join(records, f), 'utf8'));
    }
  });

  it('a writer killed with SIGKILL at random points leaves a valid record and no stuck lock', async () => {
    const dir = tempDir('state-kill');
    const records = path.join(dir, 'records');
    const store = new RecordStore<{ id: string; n: number; pad: string }>({ dir: records, fsync: false });
    await store.create('r', { id: 'r', n: 0, pad: '' });
    const LOOP = `
import { RecordStore } from '@src/state/record-store.ts';
const store = new RecordStore<{ id: string; n: number; pad: string }>({ dir: process.argv[2]!, fsync: false });
const pad = 'x'.repeat(256 * 1024); // a large record widens the window of a half-done write
let announced = false;
for (;;) {
  await store.update('r', (r) => ({ ...r, n: r.n + 1, pad: r.n % 2 ? pad : '' }));
  if (!announced) { console.log('running'); announced = true; }
}
`;
    let previous = 0;
    for (let round = 0; round < 6; round++) {
      const w = child(dir, LOOP, [records]);
      expect(await w.line()).toBe('running');
      await sleep(5 + round * 17);
      w.proc.kill('SIGKILL');
      expect(await w.exited).toBe('SIGKILL');
      const r = await store.get('r'); // parses and validates: never half a record
      expect(r?.n).toBeGreaterThan(previous);
      previous = r!.n;
      const t0 = Date.now();
      await store.update('r', (x) => x); // the kernel released the dead writer's lock
      expect(Date.now() - t0).toBeLessThan(500);
    }
    expect((await store.list()).map((r) => r.id)).toEqual(['r']);
  });

  it('a process killed while holding a record lock does not block others, and its change is not applied', async () => {
    const dir = tempDir('state-kill');
    const records = path.join(dir, 'records');
    const store = new RecordStore<{ id: string; n: number }>({ dir: records });
    await store.create('r', { id: 'r', n: 1 });
    const HOLD = `
import { RecordStore } from '@src/state/record-store.ts';
const store = new RecordStore<{ id: string; n: number }>({ dir: process.argv[2]! });
await store.update('r', async (r) => {
  console.log('inside');
  await new Promise((res) => setTimeout(res, 60_000));
  return { ...r, n: 999 };
});
`;
    const w = child(dir, HOLD, [records]);
    expect(await w.line()).toBe('inside');
    const waiting = store.update('r', (r) => ({ ...r, n: r.n + 1 }));
    await sleep(50);
    w.proc.kill('SIGKILL');
    const t0 = Date.now();
    expect(await waiting).toEqual({ id: 'r', n: 2 });
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('3 processes moving records in and out of a subset, one killed with SIGKILL: a record that stays in it is always listed, and the subset ends exact', async () => {
    const dir = tempDir('state-subsets');
    const records = path.join(dir, 'records');
    type R = { id: string; on: boolean; n: number };
    const open = () => new RecordStore<R>({ dir: records, fsync: false, subsets: { on: (r) => r.on } });
    const store = open();
    for (let i = 0; i < 5; i++) await store.create(`always-${i}`, { id: `always-${i}`, on: true, n: 0 });
    for (let i = 0; i < 30; i++) await store.create(`toggle-${i}`, { id: `toggle-${i}`, on: i % 2 === 0, n: 0 });
    const TOGGLER = `
import { RecordStore } from '@src/state/record-store.ts';
const [dir, worker, count] = process.argv.slice(2);
const store = new RecordStore<{ id: string; on: boolean; n: number }>({ dir: dir!, fsync: false, subsets: { on: (r) => r.on } });
let seed = worker!.charCodeAt(0) * 7919;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
const mine: string[] = [];
for (let i = 0; worker === 'k' || i < Number(count); i++) {
  const r = random();
  if (r < 0.15) await store.update('always-' + Math.floor(random() * 5), (x) => ({ ...x, n: x.n + 1 }));
  else if (r < 0.75) await store.update('toggle-' + Math.floor(random() * 30), (x) => ({ ...x, on: random() < 0.5, n: x.n + 1 }));
  else if (r < 0.9 || mine.length === 0) {
    const id = worker + '-' + i;
    await store.create(id, { id, on: random() < 0.5, n: 0 });
    mine.push(id);
  } else await store.delete(mine.splice(Math.floor(random() * mine.length), 1)[0]!);
}
console.log('done');
process.stdin.destroy();
`;
    const workers = ['a', 'b', 'k'].map((w) => child(dir, TOGGLER, [records, w, '1500']));
    for (const w of workers) expect(await w.line()).toBe('ready');
    for (const w of workers) w.proc.stdin!.write('go\n');
    let finished = false;
    const done = Promise.all(workers.slice(0, 2).map((w) => w.line())).finally(() => (finished = true));
    const reader = open();
    let lists = 0;
    const killAt = Date.now() + 300;
    while (!finished) {
      if (workers[2]!.proc.exitCode === null && workers[2]!.proc.signalCode === null && Date.now() > killAt)
        workers[2]!.proc.kill('SIGKILL');
      const listed = await reader.list({ subset: 'on' });
      for (let i = 0; i < 5; i++) expect(listed.map((r) => r.id)).toContain(`always-${i}`);
      for (const r of listed) expect(r.on).toBe(true);
      lists++;
      await sleep(2); // let the children's lines in
    }
    expect(await done).toEqual(['done', 'done']);
    expect(await workers[2]!.exited).toBe('SIGKILL');
    expect(lists).toBeGreaterThan(5);
    const exact = (await store.list())
      .filter((r) => r.on)
      .map((r) => r.id)
      .sort();
    expect((await reader.list({ subset: 'on' })).map((r) => r.id).sort()).toEqual(exact);
    expect((await open().list({ subset: 'on' })).map((r) => r.id).sort()).toEqual(exact);
  });
});
