/**
 * The container manager: Docker's policy for containers (names, pull-less create, start, wait,
 * stop, kill, remove, list, pause, update, rename) over the record store and the runtime. A
 * facade over its parts: the state table (`status.ts`), starting a run (`start.ts`), what a run
 * holds (`run-resources.ts`), the runs' status and exits (`run-state.ts`: who owns a run and how
 * any process sees its exit), exec (`exec.ts`), health checks and restart policies
 * (`supervise.ts`), and the file system (diff, export, copy, commit's layer). See `README.md` in
 * this folder.
 *
 * @module
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { attachCleanupErrors, ConflictError, NotFoundError } from '../errors.js';
import { RecordStore } from '../state/record-store.js';
import { ensureReserve, spaceIsLow, withReserve } from '../state/reserve.js';
import type { CgroupLimits, CgroupStats } from '../runtime/cgroups/index.js';
import { commandLines, signalProcess, SIGNALS } from '../runtime/host.js';
import { copyRunStdio, type AttachSource } from './stdio.js';
import { followRecords, logEnd, readLogLines, type LogLine, type LogsOptions } from './logs.js';
import { labelOf, type ContainerRecord } from './record.js';
import { containerCore, containerRecords } from './core.js';
import type { ContainerCreateOptions } from './options.js';
import { createContainer } from './create.js';
import { toNetworkSettings, type NetworkSettings } from './info.js';
import { containerPaths, type ContainerPaths } from './spec.js';
import { assertCan, can, isActive, stateError, type ContainerVerb } from './status.js';
import type { ContainerCore, ContainerServiceContext, ResolvedImage } from './context.js';
import { commitContainer, type CommitOptions } from './commit.js';
import {
  runExec,
  startExec,
  type ExecOptions,
  type ExecResult,
  type RunExecOptions,
  type StartedExec,
} from './exec.js';
import { RunResources } from './run-resources.js';
import { cleanupErrors } from './cleanup.js';
import { startContainer, type StartIo } from './start.js';
import { RunStates, type ContainerListFilter, type WaitCondition } from './run-state.js';
import { Supervisor } from './supervise.js';
import * as cgroupVerbs from './cgroup-verbs.js';
import { DeadOwnerReaper, discardDir, sweepOnce } from './sweep.js';
import { ContainerFs } from './fs/index.js';
import { connectTo, listensIn, type ConnectSocketOptions } from './connect.js';
import type { Socket } from 'node:net';
import type { TarSource } from './fs/copy.js';
import type { ContainerChange } from './fs/union.js';

export type {
  CommitImageOptions,
  ContainerNetworks,
  ContainerRuntime,
  ContainerServiceContext,
  ContainerVolumes,
  ResolvedImage,
} from './context.js';
export type { CommitOptions } from './commit.js';
export type { ExecOptions, ExecResult, RunExecOptions, StartedExec } from './exec.js';
export type { ContainerListFilter, WaitCondition } from './run-state.js';

/** The container manager of one engine. */
export class ContainerService {
  readonly #ctx: ContainerServiceContext;
  /** The records, one JSON file per container. */
  readonly records: RecordStore<ContainerRecord>;
  readonly #dir: string;
  readonly #runDir: string;
  readonly #core: ContainerCore;
  readonly #resources: RunResources;
  readonly #runs: RunStates;
  readonly #supervisor: Supervisor;
  /** diff, export, copy, the commit layer. */
  readonly #fs = new ContainerFs({
    get: (ref) => this.get(ref),
    paths: (id) => this.paths(id),
    layerDir: (diffId) => this.#ctx.layerDir(diffId),
    isActive: (rec) => isActive(rec.state.status),
    label: (rec) => labelOf(rec),
  });
  #swept: Promise<void> | undefined;
  /** True once its engine closed: `logs({ follow })` iterators end once drained, `stats()` at the next sample. */
  closed = false;
  /** Containers whose owner died, recorded (and the autoRemove ones removed) before the first call. */
  readonly #reaper = new DeadOwnerReaper(
    () => this.#dir,
    () => this.#runs.list().then(() => this.#resources.allSettled()),
  );

  /** Creates the manager; touches nothing until used. */
  constructor(ctx: ContainerServiceContext) {
    this.#ctx = ctx;
    this.#dir = join(ctx.root, 'containers');
    this.#runDir = ctx.runRoot === undefined ? this.#dir : join(ctx.runRoot, 'containers');
    this.records = containerRecords(this.#dir);
    this.#core = containerCore(ctx, this.records, (id) => this.paths(id));
    this.#resources = new RunResources(this.#core, (ref) => this.get(ref));
    this.#runs = new RunStates(this.#core, this.#resources, (id) =>
      this.remove(id, { force: true, volumes: true }).catch(() => {
        // The exit is recorded whatever becomes of the auto-removal (a read must not fail for it):
        // a container it could not remove stays, exited, and its removal by the user reports why.
      }),
    );
    this.#supervisor = new Supervisor(
      this.#core,
      (id, command) => this.exec(id, command),
      (id) => this.start(id),
    );
    ctx.zygote.onExit((id, status) => {
      void this.#runs
        .recordExit(id, status)
        .then((rec) => (rec ? this.#supervisor.applyRestartPolicy(rec) : undefined))
        // Nobody awaits an exit the runtime reports: a record it could not update is recorded by
        // the next read (which recomputes it from the kernel and the exit file).
        .catch(() => undefined)
        .finally(() => this.#runs.notify(id, status));
    });
  }

  /** The file layout of container `id`. */
  paths(id: string): ContainerPaths {
    return containerPaths(this.#dir, id, this.#runDir);
  }

  /**
   * Creates a container (does not start it); `signal` stops the pull of a missing image. `image` is
   * the image builder's path: the container is made from that already-resolved image (a build step's
   * parent layers, which no image record names) and `input.image` is only recorded; the public
   * `Container.create` never passes it.
   */
  async create(input: ContainerCreateOptions, image?: ResolvedImage, signal?: AbortSignal): Promise<ContainerRecord> {
    return createContainer(
      this.#core,
      { sweep: () => this.#sweep(), get: (ref) => this.get(ref), usernsLock: join(this.#dir, 'userns.lock') },
      input,
      image,
      signal,
    );
  }

  /** The once-per-engine sweep (see {@link sweepOnce}), before the first create. */
  #sweep(): Promise<void> {
    this.#swept ??= sweepOnce(this.#core, this.#dir, () => this.list().then(() => this.#resources.allSettled()));
    return this.#swept;
  }

  /** Resolves a name, id or unique id prefix to a record (with its status refreshed). */
  async get(ref: string): Promise<ContainerRecord> {
    await this.#reaper.ready();
    const id = await this.records.resolve(ref.replace(/^\//, ''));
    const rec = await this.records.get(id);
    if (!rec) throw new NotFoundError('container', ref);
    return this.#runs.refresh(rec);
  }

  /** Starts a created or exited container; resolves once its program runs (with `io.stdinFd` as its stdin). */
  async start(ref: string, io: StartIo = {}): Promise<ContainerRecord> {
    return startContainer(
      this.#core,
      {
        resources: this.#resources,
        runs: this.#runs,
        supervisor: this.#supervisor,
        remove: (id, o) => this.remove(id, o),
      },
      await this.get(ref),
      io,
    );
  }

  /**
   * Waits until the container is not running and returns its exit code. A container that was
   * never started resolves at once (Docker's `not-running` condition).
   */
  async wait(
    ref: string,
    signal?: AbortSignal,
    condition: WaitCondition = 'not-running',
  ): Promise<{ exitCode: number; record?: ContainerRecord }> {
    return this.#runs.wait((r) => this.get(r), ref, signal, condition);
  }

  /** Sends `signal` to the container's PID 1. Throws NOT_RUNNING when it does not run. */
  async kill(ref: string, signal: number): Promise<void> {
    const rec = await this.get(ref);
    assertCan('kill', rec.state.status, this.#label(rec));
    // Through the reserve: the container may be what filled the disk (see state/reserve.ts).
    await this.#spare(() => this.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, manualStop: true } })));
    this.#signal(rec, signal);
    await this.#spare(() => this.#core.event('kill', rec, { signal: String(signal) }));
  }

  /** Runs a write that stopping or removing a container needs through the root's reserve, so that it works on a full disk. */
  #spare<T>(write: () => Promise<T>): Promise<T> {
    return withReserve(this.#ctx.root, write);
  }

  #signal(rec: ContainerRecord, signal: number): void {
    signalProcess(rec.state.pid, rec.state.startTime, signal);
  }

  /**
   * Stops a running container: its stop signal, then SIGKILL after `timeout` seconds
   * (default: the container's stopTimeout). Stopping a container that is not running is a no-op.
   */
  async stop(ref: string, timeout?: number): Promise<ContainerRecord> {
    let rec = await this.get(ref);
    if (!can('stop', rec.state.status)) return rec;
    const t = timeout ?? rec.config.stopTimeout;
    rec = await this.#spare(() =>
      this.records.update(rec.id, (r) => ({
        ...r,
        state: {
          ...r.state,
          manualStop: true,
          ...(r.state.status === 'restarting' ? { status: 'exited' as const } : {}),
        },
      })),
    );
    if (!can('stop', rec.state.status)) {
      await this.#spare(() => this.#core.event('stop', rec));
      return rec;
    }
    this.#signal(rec, rec.config.stopSignal);
    await this.#spare(() => this.#core.event('kill', rec, { signal: String(rec.config.stopSignal) }));
    if (t >= 0) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), t * 1000);
      try {
        rec =
          (
            await this.wait(rec.id, ac.signal).catch((e: unknown) => {
              // The timeout: SIGKILL follows.
              if (!ac.signal.aborted) throw e;
            })
          )?.record ?? rec;
      } finally {
        clearTimeout(timer);
      }
      if (isActive(rec.state.status)) {
        this.#signal(rec, SIGNALS.SIGKILL!);
        await this.#spare(() => this.#core.event('kill', rec, { signal: String(SIGNALS.SIGKILL) }));
      }
    }
    rec = (await this.wait(rec.id)).record ?? rec;
    await this.#resources.settled(rec.id);
    await this.#spare(() => this.#core.event('stop', rec));
    return rec;
  }

  /** Removes a container. A running one is refused unless `force` (then it is killed first). */
  async remove(ref: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    let rec = await this.get(ref);
    if (!can('remove', rec.state.status)) {
      if (!options.force) throw stateError('remove', rec.state.status, labelOf(rec));
      this.#signal(rec, SIGNALS.SIGKILL!);
      rec = (await this.wait(rec.id)).record ?? rec;
    }
    await this.#resources.releaseForRemoval(rec);
    // Deleted first, recorded after (nothing here needs space but the `destroy` event, which the
    // root's reserve makes room for on a full disk; see state/reserve.ts).
    const deleted = await this.records.delete(rec.id);
    const unrecorded = this.#runs.takeUnrecorded(rec.id);
    if (rec.name) await this.records.releaseName(rec.name, rec.id);
    const deletions = [this.paths(rec.id).dir, this.paths(rec.id).runDir].map(discardDir);
    if (spaceIsLow(this.#ctx.root)) {
      // Someone is likely waiting for this space: it is back when remove() returns.
      await Promise.all(deletions);
      ensureReserve(this.#ctx.root);
    }
    // A `die` a full disk kept out of the log goes in before the `destroy`.
    if (unrecorded && !unrecorded.died)
      await this.#spare(() => this.#core.event('die', rec, { exitCode: String(unrecorded.exit.exitCode) }));
    if (deleted) await this.#spare(() => this.#core.event('destroy', rec));
    if (options.volumes) await this.#removeAnonymousVolumes(rec);
  }

  /** Removes the anonymous volumes of a removed container, each even when another fails; one removed already is fine. */
  async #removeAnonymousVolumes(rec: ContainerRecord): Promise<void> {
    const errors: unknown[] = [];
    for (const m of rec.config.mounts) {
      if (m.type !== 'volume' || !m.anonymous) continue;
      await this.#ctx.volumes.remove(m.name, { force: true }).catch((e: unknown) => {
        if (!(e instanceof NotFoundError)) errors.push(e);
      });
    }
    if (errors.length)
      throw errors.length === 1
        ? errors[0]
        : new AggregateError(errors, `cannot remove the anonymous volumes of container ${labelOf(rec)}`);
  }

  /** Ids of containers (any status, or active only) that mount volume `name`. */
  async volumeUsers(name: string, activeOnly = false): Promise<string[]> {
    return this.#runs.volumeUsers(name, activeOnly);
  }

  /**
   * Lists containers (running only unless `all`), newest first. Without `all`, and with only
   * active statuses asked for, only the records of active containers are read (an index).
   */
  async list(filter: ContainerListFilter = {}): Promise<ContainerRecord[]> {
    await this.#reaper.ready();
    return this.#runs.list(filter);
  }

  /**
   * Runs `command` in the running container (its namespaces, root, capabilities), as
   * `docker exec`; resolves with its exit code and output. A command that cannot be executed
   * throws `COMMAND_NOT_FOUND`. With a terminal, all output is in `stdout`.
   */
  async exec(ref: string, command: string[], opts: RunExecOptions = {}): Promise<ExecResult> {
    return runExec(this.#core, await this.get(ref), command, opts);
  }

  /**
   * Starts `command` in the running container and resolves once it runs, as `docker exec -i`
   * (with `stdin`) or `-it` (with `terminal`); its output goes to `onOutput` as it comes.
   */
  async startExec(
    ref: string,
    command: string[],
    opts: ExecOptions,
    onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void,
  ): Promise<StartedExec> {
    return startExec(this.#core, await this.get(ref), command, opts, onOutput);
  }

  /**
   * Copies, into this process, the running container's stdin (the write end of its stdin pipe)
   * and terminal master from the process that holds them. Both absent when it has neither, or
   * it no longer runs.
   */
  async stdinOf(ref: string, input = true): Promise<{ record: ContainerRecord; stdin?: number; tty?: number }> {
    const rec = await this.get(ref);
    assertCan('attach', rec.state.status, this.#label(rec));
    return { record: rec, ...(input ? copyRunStdio(rec.state) : {}) };
  }

  /**
   * Attaches to a running container (`docker attach`): its held stdin and terminal (with
   * `stdin`, the default), and its output records from now on, or from the start with `logs`.
   */
  async attach(ref: string, o: { logs?: boolean; stdin?: boolean } = {}): Promise<AttachSource> {
    const { record, stdin, tty } = await this.stdinOf(ref, o.stdin !== false);
    const log = { path: this.paths(record.id).log, maxFile: record.config.log.maxFile };
    // The starting point is fixed now: output written from here on is never missed.
    const from = o.logs ? 'start' : ((await logEnd(log.path)) ?? 'start');
    return {
      records: (signal) => followRecords(log, { from, signal }, () => this.isRunning(record.id)),
      ...(stdin !== undefined ? { stdin } : {}),
      ...(tty !== undefined ? { tty } : {}),
    };
  }

  /** The output of a container as lines with stream and time (`docker logs`); with `follow`, until it stops. */
  async *logLines(ref: string, o: LogsOptions = {}): AsyncGenerator<LogLine> {
    const rec = await this.get(ref);
    yield* readLogLines({ path: this.paths(rec.id).log, maxFile: rec.config.log.maxFile }, o, () =>
      this.closed ? Promise.resolve(false) : this.isRunning(rec.id),
    );
  }

  /** Whether the container's current run is still going (its process alive). */
  async isRunning(id: string): Promise<boolean> {
    const rec = await this.records.get(id);
    if (!rec) return false;
    return isActive((await this.#runs.refresh(rec)).state.status);
  }

  /** Sends `signal` to a process started by {@link startExec}, unless it has ended. */
  signalExec(pid: number, startTime: number, signal: number): void {
    signalProcess(pid, startTime, signal);
  }

  /** The record of `ref`, once its status accepts `verb`. */
  async #accepting(ref: string, verb: ContainerVerb): Promise<ContainerRecord> {
    const rec = await this.get(ref);
    assertCan(verb, rec.state.status, this.#label(rec));
    return rec;
  }

  /** Freezes every process of a running container (cgroup freezer), as `docker pause`. */
  async pause(ref: string): Promise<ContainerRecord> {
    return cgroupVerbs.pause(this.#core, await this.#accepting(ref, 'pause'));
  }

  /** Thaws a paused container, as `docker unpause`. */
  async unpause(ref: string): Promise<ContainerRecord> {
    return cgroupVerbs.unpause(this.#core, await this.#accepting(ref, 'unpause'));
  }

  /** Changes the limits of a container (live when it runs), as `docker update`. */
  async update(ref: string, resources: CgroupLimits): Promise<ContainerRecord> {
    return cgroupVerbs.update(this.#core, await this.get(ref), resources);
  }

  /** One sample of a running container's cgroup figures. */
  async stats(ref: string): Promise<CgroupStats> {
    return cgroupVerbs.stats(this.#core, await this.#accepting(ref, 'stat'));
  }

  /** Host pids of every process in a running container. */
  async pids(ref: string): Promise<number[]> {
    return cgroupVerbs.pids(this.#core, await this.#accepting(ref, 'top'));
  }

  /** The processes of a running container (host pids and command lines), as `docker top`. */
  async top(ref: string): Promise<Array<{ pid: number; command: string }>> {
    return commandLines(await this.pids(ref));
  }

  // ── file system: diff, export, copy, commit layer; rename ──

  /** The changes of the container's file system against its image, as `docker diff` (see {@link ContainerFs.diff}). */
  diff(ref: string): Promise<ContainerChange[]> {
    return this.#fs.diff(ref);
  }

  /** The container's whole file system as a tar stream, as `docker export` (see {@link ContainerFs.export}). */
  export(ref: string): Readable {
    return this.#fs.export(ref);
  }

  /** The container's upper dir as an image layer tar, for commit (see {@link ContainerFs.layerTar}). */
  layerTar(ref: string): Promise<{ record: ContainerRecord; tar: AsyncGenerator<Buffer> }> {
    return this.#fs.layerTar(ref);
  }

  /** Records the container's changes as a new image, as `docker commit` (see {@link commitContainer}); resolves with its id. */
  commit(ref: string, options: CommitOptions): Promise<{ id: string }> {
    return commitContainer(this.#core, (r) => this.layerTar(r), ref, options);
  }

  /** A tar of `path` inside the container, as `docker cp CONTAINER:path -` (see {@link ContainerFs.copyFrom}). */
  copyFrom(ref: string, path: string): Readable {
    return this.#fs.copyFrom(ref, path);
  }

  /** Extracts the tar `source` into the directory `path` inside the container, as `docker cp - CONTAINER:path` (see {@link ContainerFs.copyTo}). */
  copyTo(ref: string, path: string, source: TarSource): Promise<void> {
    return this.#fs.copyTo(ref, path, source);
  }

  /**
   * Renames a container, as `docker rename`: reserves the new name, records it, then releases
   * the old one. Emits `rename` with the old name.
   *
   * @throws ConflictError (`NAME_CONFLICT`) when another container has the name.
   */
  async rename(ref: string, newName: string): Promise<ContainerRecord> {
    const rec = await this.get(ref);
    const name = newName.replace(/^\//, '');
    if (name === rec.name)
      throw new ConflictError('NAME_CONFLICT', `container ${this.#label(rec)} is already named '${name}'`);
    await this.records.reserveName(name, rec.id);
    let next: ContainerRecord;
    try {
      next = await this.records.update(rec.id, (r) => ({ ...r, name }));
    } catch (e) {
      throw attachCleanupErrors(e, await cleanupErrors([() => this.records.releaseName(name, rec.id)]));
    }
    if (rec.name) await this.records.releaseName(rec.name, rec.id);
    await this.#core.event('rename', next, { oldName: rec.name });
    return next;
  }

  /** A container's networks, addresses and published ports. */
  async networkSettings(id: string): Promise<NetworkSettings> {
    return toNetworkSettings((await this.#ctx.networks?.attachmentsOf(id)) ?? []);
  }

  /** Ids of containers created from image `imageId` (used to refuse removing it). */
  async imageUsers(imageId: string): Promise<string[]> {
    return (await this.records.list()).filter((r) => r.imageId === imageId).map((r) => r.id);
  }

  /** How messages name `rec` (see {@link labelOf}). */
  /** A TCP connection to `127.0.0.1:port` in a running container's network namespace (see `connect.ts`). */
  async connect(ref: string, port: number, o: ConnectSocketOptions = {}): Promise<Socket> {
    return connectTo(await this.#accepting(ref, 'connect'), port, o);
  }

  /** Whether something listens on TCP `port` in a running container's network namespace. */
  async listensOn(ref: string, port: number): Promise<boolean> {
    return listensIn(await this.#accepting(ref, 'connect'), port);
  }

  #label(rec: ContainerRecord): string {
    return labelOf(rec);
  }

  /** The directory of the per-name lock files of `Container.getOrCreate` (see `reuse.ts`). */
  get reuseLockDir(): string {
    return join(this.#dir, 'reuse');
  }
}
