/**
 * `Container.pool`: started containers of one spec kept ready, handed out in a rename, shared by
 * every process on the root (the workers of a test runner).
 *
 * **Key.** A pool is the spec's hash (`specHash` of `reuse.ts`, the one `getOrCreate` records)
 * plus an optional `name`: processes opening the same spec (and name) share one set of members.
 * Members are detached containers (they outlive the process that started them) labelled
 * {@link POOL_LABEL}`=<key>`, and {@link WARMER_LABEL}`=<pid>-<start time>` of the process that
 * made them.
 *
 * **Take** (`pool-store.ts`): a `readdir` of the idle members and a `rename(2)` of one into
 * `taken/`, which exactly one process wins, then a check in /proc that the member's init still
 * runs (its pid and start time, kept in the idle file: no record read; a member that stopped
 * while idle is removed and the next tried). With none idle, `take()` creates and starts one itself.
 * Either way a refill starts in the background, off the caller's path.
 *
 * **Refill**: under the pool's `flock`, counts the idle members and makes the missing ones at once
 * (counted again after each round), so that several processes refilling at once do not overshoot. A refill's failure is
 * never an unhandled rejection: the next `take()` rejects with it as its cause (the one after
 * tries again), or `close()` does when no take came.
 *
 * **Ownership.** A taken container is its taker's: disposing of it (`await using`) removes it, and
 * so does the `close()` of the pool handle it was taken through. When the taker dies (even by
 * SIGKILL), its taken containers are removed by the next sweep of the pool (at an open, a refill,
 * a close, in any process). The sweep at an open and at a close also removes members no file
 * accounts for whose maker died (killed between its create and its idle file), and idle members
 * that stopped.
 *
 * **Close.** Each open handle registers a holder file; `close()` unregisters it and, when no live
 * process holds the pool any more (holders of dead processes are swept), removes the idle members.
 * Idle members of a pool whose holders all died stay ready for the next open of the same pool.
 *
 * @module
 */
import { join } from 'node:path';
import { z } from 'zod';
import {
  attachCleanupErrors,
  BerthError,
  InvalidArgumentError,
  NotFoundError,
  StateError,
  type ErrorCode,
} from '../errors.js';
import { withLock } from '../state/lock.js';
import { ownerTag } from '../runtime/proc.js';
import { callStop, type CallStop } from './call-stop.js';
import { cleanupErrors, settleAll } from './cleanup.js';
import { parseOptions, type ContainerCreateOptions } from './options.js';
import type { ContainerRecord } from './record.js';
import { specHash } from './reuse.js';
import { ownerAlive, PoolStore, takenName } from './pool-store.js';
import type { ContainerListFilter } from './run-state.js';
import type { WaitForOptions } from './wait-for.js';

/** The label naming the pool (its key) a container is a member of. */
export const POOL_LABEL = 'berth.pool';
/** The label naming the process (`<pid>-<start time>`) that made a pool member. */
export const WARMER_LABEL = 'berth.pool.warmer';

/** Options of a pool (`Container.pool` takes these and `engine`). */
export interface PoolOptions {
  /**
   * How many started members the pool keeps idle, 1 to 64. Default 4. Not part of the key: each
   * handle refills up to its own size, so processes asking different sizes keep the largest.
   */
  size?: number;
  /**
   * Tells pools of the same spec apart (`[a-zA-Z0-9][a-zA-Z0-9_.-]`, up to 64): processes share a
   * pool when both the spec and the name are the same. Default: none (the spec alone).
   */
  name?: string;
  /**
   * A member is idle (and a take's own container handed out) only once these conditions hold, as
   * `Container.start`'s `waitFor`; a member that does not get ready fails its refill (or take).
   * Not part of the pool's key: every process sharing the pool should give the same.
   */
  waitFor?: WaitForOptions;
}

/** Options of {@link ContainerPool.take}. */
export interface PoolTakeOptions {
  /** Cancels a take that has to create its container (`ABORTED`); a created one is removed. */
  signal?: AbortSignal;
  /** Gives up a take that has to create its container after this many ms (`TIMEOUT`); a created one is removed. */
  timeout?: number;
}

/** Schema of {@link PoolOptions} (`waitFor` and `engine` are checked by the caller). */
export const poolOptionsSchema = z.strictObject({
  size: z.number().int().min(1).max(64).optional(),
  name: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    .max(64)
    .optional(),
  waitFor: z.unknown().optional(),
  engine: z.unknown().optional(),
});

const takeSchema = z.strictObject({
  signal: z.instanceof(AbortSignal).optional(),
  timeout: z.number().int().positive().optional(),
});

/** What a stopped take's error names. */
const TAKING = 'taking a container from the pool';

/** What a pool needs from the container manager (`ContainerService` has it all). */
export interface PoolSteps {
  /** Creates a container (not started). */
  create(input: ContainerCreateOptions): Promise<ContainerRecord>;
  /** Starts a container; resolves once its program runs. */
  start(ref: string): Promise<ContainerRecord>;
  /** The record of a container (status refreshed); NotFoundError when it is gone. */
  get(ref: string): Promise<ContainerRecord>;
  /** Removes a container. */
  remove(ref: string, options: { force?: boolean; volumes?: boolean }): Promise<void>;
  /** The containers matching `filter`. */
  list(filter: ContainerListFilter): Promise<ContainerRecord[]>;
}

/** The engine a pool is opened on: its root and container manager (an `Engine`). */
export interface PoolEngine {
  /** The state root; the pool's files are under `<root>/pools/<key>/`. */
  readonly root: string;
  /** The container manager. */
  readonly containers: PoolSteps;
}

/** A pool's key: the spec hash, and the name when there is one. */
export function poolKey(hash: string, name?: string): string {
  return name === undefined ? hash : `${hash}-${name}`;
}

/**
 * The create options of a pool's members and the pool's key, checked: `spec` as `create` checks
 * it (made detached), without a `name` (members are many) and not `detach: false`.
 *
 * @throws InvalidArgumentError naming the field, before anything is made.
 */
export function poolSpec(
  spec: ContainerCreateOptions,
  options: PoolOptions,
): { options: ContainerCreateOptions; key: string; size: number } {
  const o = parseOptions(poolOptionsSchema, options);
  if (typeof spec !== 'object' || spec === null) throw new InvalidArgumentError('spec', 'expected create options');
  if (spec.name !== undefined)
    throw new InvalidArgumentError('name', "a pool's members are many: name the pool with the options' name instead");
  if (spec.detach === false)
    throw new InvalidArgumentError('detach', "a pool's members are detached (any process on the root may take one)");
  const { options: create, hash } = specHash(spec);
  return { options: create, key: poolKey(hash, o.name), size: o.size ?? 4 };
}

/** The code of `e` when it is a berth error, else `INTERNAL`. */
function codeOf(e: unknown): ErrorCode {
  return e instanceof BerthError ? e.code : 'INTERNAL';
}

/**
 * One error for the members of a fill round that failed (of `made` made at once): the error itself
 * when one failed, else one with the first's code and message and all of them as its cause.
 */
function fillError(errors: unknown[], made: number): unknown {
  const [first] = errors;
  if (errors.length === 1) return first;
  const why = first instanceof Error ? first.message : String(first);
  return new BerthError(codeOf(first), `${errors.length} of ${made} new pool members failed, the first: ${why}`, {
    cause: new AggregateError(errors, 'the pool members that failed'),
  });
}

/** Removes container `id` (forced, with its anonymous volumes); one gone already is fine. */
async function removeMember(steps: PoolSteps, id: string): Promise<void> {
  await steps.remove(id, { force: true, volumes: true }).catch((e: unknown) => {
    if (!(e instanceof NotFoundError)) throw e;
  });
}

/**
 * Started containers of one spec kept ready: {@link ContainerPool.take} hands one out at once and
 * a refill replaces it in the background. Made by `Container.pool`, which resolves once the pool
 * holds `size` idle members. See the module's comment of `pool.ts` for the rules across processes.
 *
 * @typeParam C - The handle `take()` gives (`Container`).
 *
 * @example
 * ```ts
 * await using pool = await Container.pool({ image: 'busybox', command: ['sleep', 'infinity'] }, { size: 4 });
 * await using c = await pool.take(); // started already; removed at the end of the scope
 * await c.exec(['echo', 'hi']);
 * ```
 */
export class ContainerPool<C> implements AsyncDisposable {
  /** How many idle members the pool keeps. */
  readonly size: number;
  /** The pool's key: the spec hash, then `-<name>` when it has a name. Members carry it as label `berth.pool`. */
  readonly key: string;
  readonly #engine: PoolEngine;
  readonly #store: PoolStore;
  readonly #create: ContainerCreateOptions;
  readonly #handle: (id: string) => C;
  /** Waits until a started member is ready (`waitFor`), when the pool has conditions. */
  readonly #ready: ((id: string, since: number) => Promise<void>) | undefined;
  readonly #stop = new AbortController();
  /** Containers taken through this handle, removed by its close. */
  readonly #taken = new Set<string>();
  #holder: string | undefined;
  #closed: Promise<void> | undefined;
  #refilling: Promise<void> | undefined;
  #again = false;
  #failure: { error: unknown } | undefined;

  /** How many members are idle now, counting every process's (a listing of the pool's directory). */
  get idle(): number {
    return this.#store.idle().length;
  }

  /** The container manager (read on first use: the engine prepares its root then). */
  get #steps(): PoolSteps {
    return this.#engine.containers;
  }

  /**
   * A handle on the pool of `spec` on `engine`'s root (`<root>/pools/<key>/`); touches nothing (see
   * `Container.pool`, which opens it). `handle` makes the handle of a taken container id;
   * `ready` waits until a member started at `since` (ms since the epoch) is ready.
   *
   * @internal
   *
   * @throws InvalidArgumentError for invalid options or spec (see {@link poolSpec}).
   */
  constructor(
    engine: PoolEngine,
    spec: ContainerCreateOptions,
    options: PoolOptions,
    handle: (id: string) => C,
    ready?: (id: string, since: number) => Promise<void>,
  ) {
    const { options: create, key, size } = poolSpec(spec, options);
    this.size = size;
    this.key = key;
    this.#engine = engine;
    this.#store = new PoolStore(join(engine.root, 'pools', key));
    this.#handle = handle;
    this.#ready = ready;
    this.#create = {
      ...create,
      labels: { ...create.labels, [POOL_LABEL]: key, [WARMER_LABEL]: ownerTag() },
    };
  }

  /**
   * Registers this handle, sweeps what dead processes left (their taken containers, orphans), and
   * fills the pool to its size; rejects with the fill's failure after closing the handle.
   *
   * @internal
   */
  async open(): Promise<this> {
    void this.#steps; // the engine prepares its root (privileges checked, mode set) before any pool file
    this.#store.ensure();
    this.#holder = this.#store.addHolder();
    try {
      await withLock(this.#store.lockPath, async () => {
        await this.#sweep(true);
        await this.#fill();
      });
    } catch (e) {
      throw attachCleanupErrors(e, await cleanupErrors([() => this.close()]));
    }
    return this;
  }

  /**
   * A started container of the pool, now the caller's: an idle member when there is one (a
   * `rename`, and a read of /proc that its init still runs: no record is read on this path, no
   * container made; one that stopped while idle is removed and the next tried), else one created and
   * started now (`signal` and `timeout` apply to that, checked between its steps). Starts a
   * refill in the background either way. The container is removed when disposed of, when this
   * handle closes, or when this process ends (by the next sweep of the pool).
   *
   * @throws BerthError with the failure of the last background refill as its `cause` (its code),
   * once; StateError `INVALID_STATE` once the pool is closed; TimeoutError, AbortedError.
   */
  async take(options: PoolTakeOptions = {}): Promise<C> {
    const o = parseOptions(takeSchema, options);
    if (this.#closed) throw this.#closedError();
    const failure = this.#failure;
    if (failure) {
      this.#failure = undefined;
      throw this.#refillError(failure.error);
    }
    const stop = callStop(o.signal, o.timeout);
    stop.throwIfStopped(TAKING);
    for (const id of this.#store.idle()) {
      const member = this.#store.claim(id);
      if (member === undefined) continue; // another process (or call) took it first
      this.#taken.add(id);
      if (member.running) {
        this.#refill();
        return this.#handle(id);
      }
      await this.#forget(id); // stopped (or removed) while idle: not handed out
    }
    try {
      return this.#handle(await this.#makeTaken(stop));
    } finally {
      this.#refill(); // after its own container: a refill started now would slow it down
    }
  }

  /** Makes a member for the caller (none was idle); `stop` is checked between the steps. */
  async #makeTaken(stop: CallStop): Promise<string> {
    const id = await this.#make((rec) => {
      // Closed meanwhile: the close has removed what this handle took, and would miss this one.
      if (this.#closed) throw this.#closedError();
      this.#store.addTaken(rec.id);
    }, stop);
    this.#taken.add(id);
    return id;
  }

  /**
   * Creates and starts a member, waits until it is ready (when the pool has `waitFor`), then
   * `record`s it; when a step fails (or `stop` fired between two), removes it and rethrows.
   */
  async #make(record: (started: ContainerRecord) => void, stop?: CallStop): Promise<string> {
    const rec = await this.#steps.create(this.#create);
    try {
      stop?.throwIfStopped(TAKING);
      const since = Date.now();
      const started = await this.#steps.start(rec.id);
      await this.#ready?.(rec.id, since);
      stop?.throwIfStopped(TAKING);
      record(started);
    } catch (e) {
      throw attachCleanupErrors(e, await cleanupErrors([() => removeMember(this.#steps, rec.id)]));
    }
    return rec.id;
  }

  /** The error of a take on a closed pool. */
  #closedError(): StateError {
    return new StateError('closed', 'take', `pool ${this.key.slice(0, 12)} is closed: open it again to take from it`);
  }

  /** The error a take reports for a failed background refill. */
  #refillError(cause: unknown): BerthError {
    const why = cause instanceof Error ? cause.message : String(cause);
    return new BerthError(
      codeOf(cause),
      `refilling pool ${this.key.slice(0, 12)} in the background failed: ${why} (reported once; the next take tries again)`,
      { cause },
    );
  }

  /** Starts a refill in the background (or asks the running one to go on); never rejects. */
  #refill(): void {
    if (this.#closed || this.#stop.signal.aborted) return;
    if (this.#refilling) {
      this.#again = true;
      return;
    }
    // After the caller's take has resolved: a refill is never on its path.
    this.#refilling = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() =>
        withLock(
          this.#store.lockPath,
          async () => {
            await this.#sweep(false);
            await this.#fill();
          },
          { signal: this.#stop.signal },
        ),
      )
      .catch((e: unknown) => {
        if (!this.#stop.signal.aborted) this.#failure = { error: e };
      })
      .finally(() => {
        this.#refilling = undefined;
        if (this.#again) {
          this.#again = false;
          this.#refill();
        }
      });
  }

  /**
   * Under the pool's lock: makes the missing members, all at once (a slow start, such as a
   * database's with `waitFor`, is paid once, not `size` times), until `size` are idle or this
   * handle closes. A member that fails is removed; the others still become idle.
   */
  async #fill(): Promise<void> {
    for (;;) {
      const missing = this.size - this.#store.idle().length;
      if (this.#stop.signal.aborted || missing <= 0) return;
      const add = ({ id, state }: ContainerRecord) => this.#store.addIdle(id, state.pid, state.startTime);
      const errors = await cleanupErrors(Array.from({ length: missing }, () => () => this.#make(add)));
      if (errors.length) throw fillError(errors, missing);
    }
  }

  /** Removes taken container `id` (this handle's) and forgets it. */
  async #forget(id: string): Promise<void> {
    await removeMember(this.#steps, id);
    this.#store.forgetTaken(takenName(ownerTag(), id));
    this.#taken.delete(id);
  }

  /**
   * Under the pool's lock: removes the containers of takers that died and forgets them. `full`
   * (at an open and a close) also removes idle members that stopped, and members no file
   * accounts for whose maker died; and forgets taken files whose container is gone.
   */
  async #sweep(full: boolean): Promise<void> {
    const message = `sweeping pool ${this.key.slice(0, 12)}`;
    const remove = (id: string, name: string) => async () => {
      await removeMember(this.#steps, id);
      this.#store.forgetTaken(name);
    };
    await settleAll(
      this.#store
        .taken()
        .filter((t) => !ownerAlive(t.taker))
        .map((t) => remove(t.id, t.name)),
      message,
    );
    if (!full) return;
    // The members first, then the idle files, then the taken ones: a member moves from idle to
    // taken only, so each listed member that is in neither had never reached its idle file.
    const members = await this.#steps.list({ all: true, label: [`${POOL_LABEL}=${this.key}`] });
    const idle = new Set(this.#store.idle());
    const taken = new Map(this.#store.taken().map((t) => [t.id, t.name]));
    const steps: Array<() => Promise<void>> = [];
    for (const m of members) {
      // An idle member that stopped is claimed first (as a take would), so that no take gets it.
      const stopped = idle.has(m.id) && m.state.status !== 'running' && this.#store.claim(m.id) !== undefined;
      const orphan = !idle.has(m.id) && !taken.has(m.id) && !ownerAlive(m.config.labels[WARMER_LABEL] ?? '');
      if (stopped || orphan) steps.push(remove(m.id, takenName(ownerTag(), m.id)));
    }
    const listed = new Set(members.map((m) => m.id));
    for (const [id, name] of taken) {
      if (listed.has(id)) continue;
      // Not listed: removed, or made after the listing (then its record is there now).
      steps.push(() =>
        this.#steps.get(id).then(
          () => undefined,
          (e: unknown) => {
            if (!(e instanceof NotFoundError)) throw e;
            this.#store.forgetTaken(name);
          },
        ),
      );
    }
    await settleAll(steps, message);
  }

  /**
   * Closes this handle: waits for its refill, removes the containers taken through it, and, when
   * no other live process (or handle) holds the pool, removes its idle members. Rejects, after all
   * of that, with what failed, and with a refill failure no take reported. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#stop.abort();
    await this.#refilling;
    const errors = await cleanupErrors([
      ...[...this.#taken].map((id) => () => this.#forget(id)),
      async () => {
        if (this.#holder !== undefined) this.#store.removeHolder(this.#holder);
        await withLock(this.#store.lockPath, async () => {
          await this.#sweep(true);
          if (this.#store.liveHolders() > 0) return;
          for (const id of this.#store.idle()) if (this.#store.claim(id)) await this.#forget(id);
        });
      },
    ]);
    if (this.#failure) errors.unshift(this.#refillError(this.#failure.error));
    this.#failure = undefined;
    if (errors.length)
      throw errors.length === 1 ? errors[0] : new AggregateError(errors, `closing pool ${this.key.slice(0, 12)}`);
  }

  /** {@link ContainerPool.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
