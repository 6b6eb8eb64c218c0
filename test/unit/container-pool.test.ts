/**
 * Container pools against a fake container manager, on a temporary directory: the key and the
 * checked options, the file names of `pool-store.ts`, and the pool's rules (take, refill, its
 * failure reported to the next take, the sweep of dead takers, orphans and stopped members, and
 * who removes what at close).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NotFoundError, StateError } from '../../src/errors.js';
import {
  ContainerPool,
  POOL_LABEL,
  poolKey,
  poolSpec,
  WARMER_LABEL,
  type PoolOptions,
  type PoolSteps,
} from '../../src/container/pool.js';
import { holderTag, ownerAlive, parseTaken, PoolStore, takenName } from '../../src/container/pool-store.js';
import type { ContainerCreateOptions } from '../../src/container/options.js';
import type { ContainerRecord } from '../../src/container/record.js';
import type { ContainerListFilter } from '../../src/container/run-state.js';
import { SPEC_HASH_LABEL, specHash } from '../../src/container/reuse.js';
import { ownerTag, processStartTime } from '../../src/runtime/proc.js';
import { tempDir } from '../helpers/tmp.js';

const SPEC: ContainerCreateOptions = { image: 'busybox', command: ['sleep', '600'] };
const SELF_START = processStartTime(process.pid)!;
/** An owner tag of no running process: this pid with another start time. */
const DEAD = `${process.pid}-${SELF_START + 1}`;
const id = () => randomBytes(32).toString('hex');

/** A container manager in memory: members "run" as this process (so that /proc finds them alive). */
class FakeSteps implements PoolSteps {
  readonly recs = new Map<string, { id: string; labels: Record<string, string>; status: string; startTime: number }>();
  /** What the next creates throw (until cleared). */
  failCreate: Error | undefined;
  /** Called at each create, before it resolves. */
  onCreate: () => void = () => undefined;
  creates = 0;
  /** The ids created, in order. */
  readonly created: string[] = [];

  async create(input: ContainerCreateOptions): Promise<ContainerRecord> {
    this.creates++;
    this.onCreate();
    if (this.failCreate) throw this.failCreate;
    const rec = { id: id(), labels: { ...input.labels }, status: 'created', startTime: SELF_START };
    this.recs.set(rec.id, rec);
    this.created.push(rec.id);
    return this.#record(rec.id);
  }

  async start(ref: string): Promise<ContainerRecord> {
    this.recs.get(ref)!.status = 'running';
    return this.#record(ref);
  }

  async get(ref: string): Promise<ContainerRecord> {
    return this.#record(ref);
  }

  async remove(ref: string): Promise<void> {
    if (!this.recs.delete(ref)) throw new NotFoundError('container', ref);
  }

  async list(filter: ContainerListFilter): Promise<ContainerRecord[]> {
    const [k, v] = filter.label![0]!.split('=') as [string, string];
    return [...this.recs.values()].filter((r) => r.labels[k] === v).map((r) => this.#record(r.id));
  }

  /** Adds a running container with `labels` (made by someone else). */
  add(labels: Record<string, string>): string {
    const rec = { id: id(), labels, status: 'running', startTime: SELF_START };
    this.recs.set(rec.id, rec);
    return rec.id;
  }

  #record(ref: string): ContainerRecord {
    const r = this.recs.get(ref);
    if (!r) throw new NotFoundError('container', ref);
    return {
      id: r.id,
      config: { labels: r.labels },
      state: { status: r.status, pid: process.pid, startTime: r.startTime },
    } as unknown as ContainerRecord;
  }
}

/** A pool of `SPEC` on a fake manager and a temp root (not opened). */
function fakePool(options: PoolOptions = { size: 2 }, steps = new FakeSteps(), root = tempDir('pool')) {
  const pool = new ContainerPool({ root, containers: steps }, SPEC, options, (cid) => cid);
  return { pool, steps, root, store: new PoolStore(join(root, 'pools', pool.key)) };
}

/** Resolves once `cond()` holds, checked after each turn of the event loop. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('pool key and options', () => {
  it('keys a pool by the spec hash of getOrCreate, and the name after it', () => {
    const { hash } = specHash(SPEC);
    expect(poolSpec({ command: ['sleep', '600'], image: 'busybox' }, {}).key).toBe(hash);
    expect(poolSpec(SPEC, { name: 'db' }).key).toBe(poolKey(hash, 'db'));
    expect(poolKey(hash, 'db')).toBe(`${hash}-db`);
    expect(poolSpec({ ...SPEC, env: { A: '1' } }, {}).key).not.toBe(hash);
  });

  it('makes members detached, labelled with the spec hash, the pool and their maker; size 4 by default', () => {
    const { pool } = fakePool({});
    expect(pool.size).toBe(4);
    const { options } = poolSpec(SPEC, {});
    expect(options.detach).toBe(true);
    expect(options.labels).toEqual({ [SPEC_HASH_LABEL]: pool.key });
  });

  it.each<[string, ContainerCreateOptions, unknown, string]>([
    ['a size of 0', SPEC, { size: 0 }, 'size'],
    ['a size over 64', SPEC, { size: 65 }, 'size'],
    ['a fractional size', SPEC, { size: 2.5 }, 'size'],
    ['a name with a slash', SPEC, { name: 'a/b' }, 'name'],
    ['a name over 64 characters', SPEC, { name: 'a'.repeat(65) }, 'name'],
    ['an unknown option', SPEC, { sizes: 2 }, 'sizes'],
    ['a container name in the spec', { ...SPEC, name: 'x' }, {}, 'name'],
    ['detach false in the spec', { ...SPEC, detach: false }, {}, 'detach'],
    ['a spec create refuses', { ...SPEC, workdir: 'relative' }, {}, 'workdir'],
    ['no spec', null as never, {}, 'spec'],
  ])('refuses %s, naming the field', (_, spec, options, field) => {
    expect(() => poolSpec(spec, options as PoolOptions)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field }),
    );
  });
});

describe('pool file names', () => {
  const cid = 'a'.repeat(64);
  it.each<[string, ReturnType<typeof parseTaken>]>([
    [`12-345-${cid}`, { name: `12-345-${cid}`, id: cid, taker: '12-345' }],
    [`12-${cid}`, undefined],
    [`12-345-${cid.slice(1)}`, undefined],
    [`x-345-${cid}`, undefined],
  ])('parseTaken(%s)', (name, member) => {
    expect(parseTaken(name)).toEqual(member);
  });

  it('takenName and parseTaken are inverse', () => {
    expect(parseTaken(takenName('7-8', cid))).toMatchObject({ id: cid, taker: '7-8' });
  });

  it.each([
    ['12-345-abc0', '12-345'],
    ['12-345', undefined],
    ['12-345-XYZ', undefined],
  ])('holderTag(%s) is %s', (name, tag) => {
    expect(holderTag(name)).toBe(tag);
  });

  it.each([
    [ownerTag(), true],
    [DEAD, false],
    ['', false],
    ['12', false],
  ])('ownerAlive(%j) is %s', (tag, alive) => {
    expect(ownerAlive(tag)).toBe(alive);
  });
});

describe('ContainerPool', () => {
  it('opens filled to its size; take hands out an idle member and a refill replaces it', async () => {
    const { pool, steps } = fakePool({ size: 2 });
    await pool.open();
    expect(pool.idle).toBe(2);
    const members = [...steps.recs.keys()];
    expect([...steps.recs.values()][0]!.labels).toMatchObject({ [POOL_LABEL]: pool.key, [WARMER_LABEL]: ownerTag() });
    const taken = await pool.take();
    expect(members).toContain(taken);
    expect(pool.idle).toBe(1); // the refill starts after the take has resolved
    await until(() => pool.idle === 2);
    expect(steps.recs.size).toBe(3);
    await pool.close();
    expect(steps.recs.size).toBe(0);
  });

  it('take creates its own container when none is idle', async () => {
    const { pool, steps } = fakePool({ size: 1 });
    await pool.open();
    const first = await pool.take();
    const second = await pool.take(); // the refill of the first has not run yet: none idle
    expect(second).not.toBe(first);
    expect(steps.recs.get(second)!.status).toBe('running');
    await pool.close();
    expect(steps.recs.size).toBe(0);
  });

  it('take skips and removes an idle member whose process stopped', async () => {
    const { pool, steps, store } = fakePool({ size: 1 });
    await pool.open();
    const [live] = store.idle() as [string];
    const stopped = steps.add({ [POOL_LABEL]: pool.key });
    store.addIdle(stopped, process.pid, SELF_START + 1); // its init is no longer the process it was
    // Two takes (in one turn of the event loop: no refill between) see both idle files, in either order.
    const taken = [await pool.take(), await pool.take()];
    expect(taken).toContain(live);
    expect(taken).not.toContain(stopped);
    expect(steps.recs.has(stopped)).toBe(false);
    await pool.close();
  });

  it('a background refill failure rejects the next take (as its cause, with its code) once, never unhandled', async () => {
    const { pool, steps } = fakePool({ size: 2 });
    await pool.open();
    const failure = Object.assign(new Error('disk full'), { code: 'NO_SPACE' });
    steps.failCreate = failure;
    const before = steps.creates;
    await pool.take();
    await until(() => steps.creates > before);
    await new Promise((r) => setTimeout(r, 0)); // the refill's rejection is recorded in the microtasks after
    await expect(pool.take()).rejects.toMatchObject({ code: 'INTERNAL', cause: failure });
    steps.failCreate = undefined;
    await expect(pool.take()).resolves.toMatch(/^[0-9a-f]{64}$/);
    await pool.close();
  });

  it('close rejects with a refill failure no take reported, after removing the members', async () => {
    const { pool, steps } = fakePool({ size: 1 });
    await pool.open();
    steps.failCreate = new Error('no image');
    const before = steps.creates;
    await pool.take();
    await until(() => steps.creates > before);
    await new Promise((r) => setTimeout(r, 0));
    await expect(pool.close()).rejects.toMatchObject({ cause: steps.failCreate });
    expect(steps.recs.size).toBe(0);
  });

  it('an open whose fill fails rejects with that failure and removes what it made', async () => {
    const { pool, steps } = fakePool({ size: 3 });
    const failure = new Error('no image');
    steps.onCreate = () => (steps.failCreate = steps.creates === 2 ? failure : undefined);
    await expect(pool.open()).rejects.toBe(failure);
    expect(steps.recs.size).toBe(0);
    await expect(pool.take()).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });

  it("an open whose members all fail rejects with the first failure's code, every failure in its cause", async () => {
    const { pool, steps } = fakePool({ size: 3 });
    steps.failCreate = new StateError('x', 'create', 'no space', 'INVALID_STATE');
    const e = await pool.open().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(/^3 of 3 new pool members failed/),
    });
    expect(((e as Error).cause as AggregateError).errors).toEqual([
      steps.failCreate,
      steps.failCreate,
      steps.failCreate,
    ]);
    expect(steps.recs.size).toBe(0);
  });

  it('an open removes the containers of takers that died, and members no file accounts for whose maker died', async () => {
    const steps = new FakeSteps();
    const { pool, store, root } = fakePool({ size: 1 }, steps);
    store.ensure();
    const key = pool.key;
    const deadTakers = steps.add({ [POOL_LABEL]: key });
    writeFileSync(join(store.dir, 'taken', takenName(DEAD, deadTakers)), '');
    const liveTakers = steps.add({ [POOL_LABEL]: key });
    writeFileSync(join(store.dir, 'taken', takenName(ownerTag(), liveTakers)), '');
    const orphan = steps.add({ [POOL_LABEL]: key, [WARMER_LABEL]: DEAD });
    const warming = steps.add({ [POOL_LABEL]: key, [WARMER_LABEL]: ownerTag() });
    const otherPool = steps.add({ [POOL_LABEL]: `${key}-x`, [WARMER_LABEL]: DEAD });
    await pool.open();
    expect(steps.recs.has(deadTakers)).toBe(false);
    expect(existsSync(join(store.dir, 'taken', takenName(DEAD, deadTakers)))).toBe(false);
    expect(steps.recs.has(orphan)).toBe(false);
    expect([liveTakers, warming, otherPool].map((c) => steps.recs.has(c))).toEqual([true, true, true]);
    // A taken file whose container is gone (disposed of by its taker) is forgotten by the next full sweep.
    await steps.remove(liveTakers);
    const again = fakePool({ size: 1 }, steps, root).pool;
    await again.open();
    expect(store.taken().map((t) => t.id)).not.toContain(liveTakers);
    await Promise.all([pool.close(), again.close()]);
  });

  it('close leaves the idle members to another live holder, and the last live holder removes them', async () => {
    const steps = new FakeSteps();
    const { pool: first, store, root } = fakePool({ size: 2 }, steps);
    const second = fakePool({ size: 2 }, steps, root).pool;
    await first.open();
    await second.open();
    const taken = await first.take();
    await until(() => first.idle === 2);
    writeFileSync(join(store.dir, 'holders', `${DEAD}-abc`), ''); // a holder that died: not counted
    await first.close();
    expect(steps.recs.has(taken)).toBe(false); // taken through the closed handle: removed
    expect(store.idle()).toHaveLength(2);
    await second.close();
    expect(steps.recs.size).toBe(0);
    expect(store.idle()).toEqual([]);
    await expect(first.take()).rejects.toMatchObject({ code: 'INVALID_STATE' });
  });

  it('take with a stopped signal is refused at once; one stopped while it creates removes what it made', async () => {
    const { pool, steps } = fakePool({ size: 1 });
    await pool.open();
    await expect(pool.take({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(pool.idle).toBe(1);
    await pool.take(); // none idle now, until the refill runs
    const stop = new AbortController();
    const made = steps.created.length;
    steps.onCreate = () => stop.abort();
    // The take's own create comes first (its refill starts after it).
    await expect(pool.take({ signal: stop.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    steps.onCreate = () => undefined;
    expect(steps.recs.has(steps.created[made]!)).toBe(false);
    await pool.close();
    expect(steps.recs.size).toBe(0);
  });

  it('a take that creates its container while its pool closes removes it and is refused', async () => {
    const { pool, steps } = fakePool({ size: 1 });
    await pool.open();
    await pool.take(); // none idle now, until the refill runs
    let closing: Promise<void> | undefined;
    steps.onCreate = () => (closing ??= pool.close());
    await expect(pool.take()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await closing;
    expect(steps.recs.size).toBe(0);
  });

  it('take refuses unknown options before taking anything', async () => {
    const { pool } = fakePool({ size: 1 });
    await pool.open();
    await expect(pool.take({ timeout: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'timeout' });
    await expect(pool.take({ wait: 1 } as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(pool.idle).toBe(1);
    await pool.close();
  });
});

// The store's directories are made by an open; a store never opened lists nothing.
it('a pool store lists nothing before its directories exist', () => {
  const store = new PoolStore(join(tempDir('pool-store'), 'none'));
  expect([store.idle(), store.taken(), store.liveHolders()]).toEqual([[], [], 0]);
});
