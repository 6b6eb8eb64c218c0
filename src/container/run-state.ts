/**
 * The status of container runs, recomputed from the kernel: recording exits (once, whoever sees
 * one first, also on a full disk), and waiting for them.
 *
 * Ownership: a container's process is a child of the zygote of the engine that started it (or of
 * its monitor, when detached). That engine records its exit as soon as the zygote reports it. Any
 * other process reads the same record and recomputes the status from the kernel (runc's
 * refreshState): the pid must be alive with the recorded start time, on this boot. When it is
 * not, the exit file the zygote wrote gives the exit code; when the owner itself is gone without
 * writing one (it was killed), the container is recorded as exited with 137, as its process was
 * SIGKILLed with it. The exit file is the runtime's report (written by processes that cannot
 * write records, on the volatile run root); the record is what outlives a reboot: both stay.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { NotFoundError } from '../errors.js';
import { readJsonFileSync } from '../state/atomic.js';
import { isNoSpace } from '../state/fs-error.js';
import { SIGNALS } from '../runtime/host.js';
import { currentBootId, isSameProcess } from '../runtime/proc.js';
import { parseExitRecord, type ExitRecord } from '../runtime/protocol.js';
import type { ContainerCore } from './context.js';
import { labelOf, type ContainerRecord, type ContainerStatus } from './record.js';
import type { RunResources } from './run-resources.js';
import { can, isActive } from './status.js';

/**
 * When `wait()` returns, as `docker wait --condition`: once the container is
 * not running (a created one returns at once), at its next exit, or once it is removed.
 */
export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** An exit this engine learnt of but could not record (a full disk). */
export interface UnrecordedExit {
  /** The exit. */
  exit: ExitRecord;
  /** Why the run ended, when the exit record does not say. */
  error: string;
  /** Its releases ran. */
  announced: boolean;
  /** Its `die` event is in the log. */
  died: boolean;
}

/** Filters of {@link RunStates.list}. */
export interface ContainerListFilter {
  /** Include stopped containers (default: running only, as `docker ps`). */
  all?: boolean;
  /** Label filters: `key` or `key=value`; all must match. */
  label?: string[];
  /** Name substrings; any may match. */
  name?: string[];
  /** Statuses; any may match. */
  status?: ContainerStatus[];
}

/** The records' indexed subset of containers recorded as active (see {@link isActive}). */
export const ACTIVE_SUBSET = 'active';

/**
 * What a run's exit record adds to its state: `timedOut` when its monitor killed it at its run
 * time limit (an engine's own timer may have set it already), and the streams its output cap cut.
 */
function exitReport(
  r: ContainerRecord,
  exit: ExitRecord,
): Pick<ContainerRecord['state'], 'timedOut' | 'outputTruncated'> {
  const cut = exit.outputTruncated;
  return {
    timedOut: r.state.timedOut || exit.timedOut === true,
    outputTruncated:
      cut?.stdout || cut?.stderr
        ? { ...(cut.stdout ? { stdout: true } : {}), ...(cut.stderr ? { stderr: true } : {}) }
        : null,
  };
}

/** The runs of one engine's containers. */
export class RunStates {
  readonly #core: ContainerCore;
  readonly #resources: RunResources;
  readonly #remove: (id: string) => Promise<void>;
  readonly #exits = new EventEmitter<Record<string, [ExitRecord]>>();
  /** Exit codes of containers this engine auto-removed, so a late `wait()` still gets them. */
  readonly #autoRemoved = new Map<string, number>();
  /**
   * Exits this engine learnt of (from its zygote, or a read) that it could not record because the
   * disk is full, per container: reads report them all the same, and record them once they can.
   * `announced`: its releases ran; `died`: its `die` event is in the log.
   */
  readonly #unrecorded = new Map<string, UnrecordedExit>();

  /** Runs over `core`; `remove` auto-removes a container (force, with its anonymous volumes). */
  constructor(core: ContainerCore, resources: RunResources, remove: (id: string) => Promise<void>) {
    this.#core = core;
    this.#resources = resources;
    this.#remove = remove;
  }

  /** Wakes the waiters of container `id` (its runtime reported an exit). */
  notify(id: string, status: ExitRecord): void {
    this.#exits.emit(id, status);
  }

  /** Takes the exit of `id` a full disk kept out of the record, if any (at its removal). */
  takeUnrecorded(id: string): UnrecordedExit | undefined {
    const u = this.#unrecorded.get(id);
    this.#unrecorded.delete(id);
    return u;
  }

  /** Recomputes the status of an active container from the kernel; records an exit it finds. */
  async refresh(rec: ContainerRecord): Promise<ContainerRecord> {
    const s = rec.state;
    if (!isActive(s.status)) {
      if (this.#unrecorded.size) this.#unrecorded.delete(rec.id);
      return rec;
    }
    if (s.status === 'restarting') {
      // Between two runs: the owner restarts it; if the owner is gone, it stays exited.
      if (s.bootId === currentBootId() && isSameProcess(s.ownerPid, s.ownerStart)) return rec;
      const exited = (r: ContainerRecord): ContainerRecord =>
        r.state.status === 'restarting' ? { ...r, state: { ...r.state, status: 'exited' } } : r;
      // A read never needs space: on a full disk the next read finds the same.
      return this.#core.records.update(rec.id, exited).catch((e: unknown) => {
        if (isNoSpace(e)) return exited(rec);
        throw e;
      });
    }
    if (s.bootId === currentBootId() && isSameProcess(s.pid, s.startTime)) return rec;
    const known = this.#unrecorded.get(rec.id);
    if (known?.exit.pid === s.pid) return (await this.recordExit(rec.id, known.exit, known.error)) ?? rec;
    const exit = readJsonFileSync(this.#core.paths(rec.id).exit);
    const parsed = parseExitRecord(exit);
    if (parsed && parsed.pid === s.pid) return (await this.recordExit(rec.id, parsed)) ?? rec;
    // The process is gone without an exit file: only final once its owner is gone too.
    if (s.bootId === currentBootId() && isSameProcess(s.ownerPid, s.ownerStart)) return rec;
    return (
      (await this.recordExit(
        rec.id,
        { pid: s.pid, exitCode: 137, signal: SIGNALS.SIGKILL!, finishedAt: Date.now() },
        'the engine process that owned it exited',
      )) ?? rec
    );
  }

  /**
   * Moves a running record to exited (once, whoever sees the exit first) and emits `die`. On a
   * full disk the exit is not recorded but returned all the same (reads never need space), and
   * kept to be recorded by a later read; its releases run once, its `die` event is written once.
   */
  async recordExit(id: string, exit: ExitRecord, error = ''): Promise<ContainerRecord | undefined> {
    let changed = false;
    let timedOutBefore = false;
    let rec: ContainerRecord;
    // A cgroup that cannot be read (another process destroyed it already) cannot tell: the exit is
    // recorded all the same, as not OOM-killed.
    const oomKilled =
      exit.exitCode === 137 ? ((await this.#core.ctx.cgroups?.oomKilled(id).catch(() => false)) ?? false) : false;
    // Removed already (e.g. after a failed start): nothing to record, and nothing to create.
    if (!(await this.#core.records.has(id))) return undefined;
    const exited = (r: ContainerRecord): ContainerRecord => {
      if (!can('exit', r.state.status) || r.state.pid !== exit.pid) return r;
      changed = true;
      timedOutBefore = r.state.timedOut;
      return {
        ...r,
        state: {
          ...r.state,
          status: 'exited',
          exitCode: exit.exitCode,
          signal: exit.signal ?? null,
          finishedAt: new Date(exit.finishedAt).toISOString(),
          error: exit.error?.message ?? error,
          oomKilled,
          ...exitReport(r, exit),
        },
      };
    };
    let recorded = true;
    try {
      rec = await this.#core.records.update(id, exited);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      if (!isNoSpace(e)) throw e;
      const current = await this.#core.records.get(id);
      if (!current) return undefined;
      changed = false;
      rec = exited(current);
      recorded = false;
    }
    const memo = this.#unrecorded.get(id);
    if (memo && memo.exit.pid !== exit.pid) this.#unrecorded.delete(id);
    const first = memo?.exit.pid === exit.pid ? memo : undefined;
    if (!changed) return rec;
    const state = first ?? { exit, error, announced: false, died: false };
    if (recorded) this.#unrecorded.delete(id);
    else this.#unrecorded.set(id, state);
    if (!state.announced) {
      state.announced = true;
      // What the run held is released off the waiter's path; remove() and start() wait for it.
      this.#resources.releaseAfterExit(rec);
    }
    if (!state.died) {
      // On a full disk, written by the read that records the exit (a read never fails for want of space).
      try {
        // Killed by its monitor at its run time limit (a detached run): its `timeout` event comes now.
        if (exit.timedOut && !timedOutBefore) await this.#core.event('timeout', rec);
        if (oomKilled) await this.#core.event('oom', rec);
        await this.#core.event('die', rec, { exitCode: String(exit.exitCode) });
        state.died = true;
      } catch (e) {
        if (!isNoSpace(e)) throw e;
      }
    }
    if (rec.config.autoRemove && !this.#autoRemoved.has(id)) {
      this.#autoRemoved.set(id, exit.exitCode);
      if (this.#autoRemoved.size > 1000) this.#autoRemoved.delete(this.#autoRemoved.keys().next().value!);
      await this.#remove(id);
    }
    return rec;
  }

  /**
   * Waits until the container is not running and returns its exit code. A container that was
   * never started resolves at once (Docker's `not-running` condition). `get` resolves `ref`.
   */
  async wait(
    get: (ref: string) => Promise<ContainerRecord>,
    ref: string,
    signal?: AbortSignal,
    condition: WaitCondition = 'not-running',
  ): Promise<{ exitCode: number; record?: ContainerRecord }> {
    let rec: ContainerRecord;
    try {
      rec = await get(ref);
    } catch (e) {
      const code = this.#autoRemoved.get(ref);
      if (code !== undefined && e instanceof NotFoundError) return { exitCode: code };
      throw e;
    }
    const id = rec.id;
    const firstFinish = rec.state.finishedAt;
    // A restarting container is between two runs: not running (docker wait returns then too).
    const running = (r: ContainerRecord) => r.state.status === 'running' || r.state.status === 'paused';
    const done = (r: ContainerRecord): boolean =>
      condition === 'not-running'
        ? !running(r)
        : condition === 'next-exit'
          ? !running(r) && r.state.finishedAt !== firstFinish
          : false;
    const hold = this.#core.ctx.zygote.hold();
    try {
      while (!done(rec)) {
        signal?.throwIfAborted();
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.#exits.off(id, done);
            signal?.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, 50);
          this.#exits.once(id, done);
          signal?.addEventListener('abort', done, { once: true });
        });
        const next = await this.#core.records.get(id);
        if (!next) {
          const code = this.#autoRemoved.get(id);
          if (code !== undefined) return { exitCode: code };
          if (condition === 'removed') return { exitCode: rec.state.exitCode ?? 0 };
          throw new NotFoundError('container', ref, `container ${labelOf(rec)} was removed while waiting for it`);
        }
        rec = await this.refresh(next);
      }
      return { exitCode: rec.state.exitCode ?? 0, record: rec };
    } finally {
      hold();
    }
  }

  /** Ids of containers (any status, or active only) that mount volume `name`. */
  async volumeUsers(name: string, activeOnly = false): Promise<string[]> {
    const recs = await this.#core.records.list(activeOnly ? { subset: ACTIVE_SUBSET } : {});
    return (await Promise.all(recs.map(async (r) => (activeOnly ? this.refresh(r) : r))))
      .filter(
        (r) =>
          (!activeOnly || isActive(r.state.status)) &&
          r.config.mounts.some((m) => m.type === 'volume' && m.name === name),
      )
      .map((r) => r.id);
  }

  /**
   * Lists containers (running only unless `all`), newest first. Without `all`, and with only
   * active statuses asked for, only the records of active containers are read (an index).
   */
  async list(filter: ContainerListFilter = {}): Promise<ContainerRecord[]> {
    const activeOnly = !filter.all && (filter.status ?? []).every((s) => isActive(s));
    const refreshed = await Promise.all(
      (await this.#core.records.list(activeOnly ? { subset: ACTIVE_SUBSET } : {})).map((r) => this.refresh(r)),
    );
    // A refresh may have recorded an exit and auto-removed the container.
    const present = await Promise.all(
      refreshed.map(async (r) => (r.config.autoRemove ? this.#core.records.has(r.id) : true)),
    );
    const recs = refreshed.filter((_, i) => present[i]);
    return recs
      .filter((r) => (filter.all || filter.status?.length ? true : isActive(r.state.status)))
      .filter((r) => !filter.status?.length || filter.status.includes(r.state.status))
      .filter((r) => !filter.name?.length || filter.name.some((n) => r.name.includes(n.replace(/^\//, ''))))
      .filter((r) =>
        (filter.label ?? []).every((l) => {
          const i = l.indexOf('=');
          return i < 0 ? l in r.config.labels : r.config.labels[l.slice(0, i)] === l.slice(i + 1);
        }),
      )
      .sort((a, b) => b.created.localeCompare(a.created));
  }
}
