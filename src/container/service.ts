/**
 * The container manager: Docker's policy for containers (names, pull-less create, start,
 * wait, stop, kill, remove, list) over the record store and the runtime.
 *
 * Ownership: a container's process is a child of the zygote of the engine that started it.
 * That engine records its exit as soon as the zygote reports it. Any other process reads the
 * same record and recomputes the status from the kernel (runc's refreshState): the pid must
 * be alive with the recorded start time, on this boot. When it is not, the exit file the
 * zygote wrote gives the exit code; when the owner itself is gone without writing one (it was
 * killed), the container is recorded as exited with 137, as its process was SIGKILLed with it.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'eventemitter3';
import { CommandError, InvalidArgumentError, NotFoundError, BerthError } from '../errors.js';
import { RecordStore } from '../state/record-store.js';
import { withLock } from '../state/lock.js';
import { readJsonFileSync } from '../state/atomic.js';
import { removeTree } from '../state/remove-tree.js';
import { fsError, isNoSpace } from '../state/fs-error.js';
import { ensureReserve, spaceIsLow, withReserve } from '../state/reserve.js';
import { buildPlan } from '../runtime/plan.js';
import { StartFailure } from '../runtime/zygote-client.js';
import type { PlanInterface } from '../network/plan-interface.js';
import type { Attachment, AttachmentOptions } from '../network/service.js';
import type { CgroupDriver, CgroupLimits, CgroupStats } from '../runtime/cgroups/index.js';
import { capabilityMask } from '../runtime/capabilities.js';
import type { ExecPlan } from '../runtime/init.js';
import type { Plan } from '../runtime/plan.js';
import type { LogLimits } from '../runtime/log-writer.js';
import { currentBootId, isSameProcess, processStartTime } from '../runtime/proc.js';
import { parseExitRecord, type ExitRecord } from '../runtime/protocol.js';
import { pidfdOpen, pidfdSendSignal } from '../kernel/process.js';
import { close, pipe2 } from '../kernel/fd.js';
import { copyHolderFd } from './stdio.js';
import { SIGNALS } from '../kernel/constants.js';
import { containerRecordSchema, initialState, type ContainerRecord, type ContainerStatus } from './record.js';
import { createOptionsSchema, parseOptions, type CheckedCreateOptions, type ContainerCreateOptions } from './options.js';
import { resolveSeccomp, seccompFilter } from './seccomp.js';
import type { NetworkSettings } from './info.js';
import { buildConfig, mergeEnv, containerPaths, hostsFile, processLimits, resolvConfFile, runtimeSpec, userMount, type ContainerPaths, type ImageRunConfig } from './spec.js';
import { createBindSources, planMounts } from './mounts.js';
import { allocateUserns } from './userns.js';
import { assertCan, can, isActive, stateError, type ContainerVerb } from './status.js';
import { Readable } from 'node:stream';
import { ConflictError } from '../errors.js';
import { acquireLock } from '../state/lock.js';
import { O_CLOEXEC, O_DIRECTORY, O_PATH } from '../kernel/constants.js';
import { open as openFd } from '../kernel/fd.js';
import { extractPath, mountDetachedOverlay, packItems, packPath, type TarSource } from './fs-ops.js';
import { upperChanges, walkUnion, walkUpper, type ContainerChange } from './union.js';

/**
 * Sends `signal` to process `pid` if it is still the one that started at `startTime` (through
 * a pidfd: no pid-reuse race). A process already gone is left alone: its exit is recorded by
 * whoever sees it.
 */
function signalProcess(pid: number, startTime: number, signal: number): void {
  let fd: number;
  try {
    fd = pidfdOpen(pid);
  } catch {
    return;
  }
  try {
    if (isSameProcess(pid, startTime)) pidfdSendSignal(fd, signal);
  } catch {
    // ESRCH: it exited in between.
  } finally {
    close(fd);
  }
}

/** Prefix of directories being deleted in the background (see {@link discardDir}). */
const TRASH_PREFIX = '.trash-';

/** How old a container directory without a record must be before a sweep deletes it (a create makes the directory first). */
const ORPHAN_GRACE_MS = 60_000;
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/**
 * Deletes a container's directory off the caller's path and off the event loop: renamed away at
 * once (atomic: no later start or create can see it half removed), then deleted on the thread
 * pool ({@link removeTree}). What a crash leaves behind is deleted by the next engine's sweep
 * ({@link sweepTrash}). The rename is done when this returns; the promise settles once the
 * directory is deleted (a caller that needs the space back at once awaits it). Never rejects.
 */
async function discardDir(dir: string): Promise<void> {
  const trash = join(dirname(dir), `${TRASH_PREFIX}${basename(dir)}-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(dir, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') await removeTree(dir);
    return;
  }
  await removeTree(trash);
}

/**
 * Deletes what a removal killed in the middle left in `dir`: the trash of {@link discardDir},
 * and container directories whose record is gone (killed between deleting the record and moving
 * the directory) once older than {@link ORPHAN_GRACE_MS}. `recordsDir` holds the records.
 */
async function sweepTrash(dir: string, recordsDir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const records = new Set(dir === recordsDir ? entries.map((e) => e.name) : await readdir(recordsDir).catch(() => [] as string[]));
  const work: Promise<unknown>[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.name.startsWith(TRASH_PREFIX)) work.push(removeTree(path));
    else if (e.isDirectory() && CONTAINER_ID.test(e.name) && !records.has(`${e.name}.json`)) {
      work.push(stat(path).then((st) => (Date.now() - st.mtimeMs > ORPHAN_GRACE_MS ? discardDir(path) : undefined), () => undefined));
    }
  }
  await Promise.all(work);
}

/** The targets the runtime mounts over (it makes empty stubs for them in the upper dir). */
function mountPoints(rec: ContainerRecord): Set<string> {
  return new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', ...rec.config.mounts.map((m) => m.target.replace(/\/+$/, ''))]);
}

/** What the container manager needs from the engine. */
export interface ContainerServiceContext {
  /** The engine's state root. */
  root: string;
  /**
   * The engine's volatile state root (a tmpfs by default): per-container files that a reboot
   * ends anyway (see {@link ContainerPaths}). Default: alongside the persistent ones.
   */
  runRoot?: string;
  /** Appends to the engine's event log. */
  appendEvent(e: { type: 'container'; action: string; id: string; attributes: Record<string, string> }): Promise<unknown>;
  /** Resolves an image for running: its id, run config and layer dirs (topmost first). */
  resolveImage(ref: string): Promise<{ id: string; config: ImageRunConfig; layerDirs: string[] }>;
  /** Pulls a missing image, as `docker run` does; resolves false when `ref` cannot be pulled (an id). Absent: no pulling. */
  pullImage?(ref: string): Promise<boolean>;
  /** The engine's runtime (its zygote). */
  zygote: ContainerRuntime;
  /** The engine's volumes. */
  volumes: ContainerVolumes;
  /** The engine's networks. */
  networks?: ContainerNetworks | undefined;
  /** The cgroup driver; absent on a machine without usable cgroups (then limits are refused). */
  cgroups?: CgroupDriver | undefined;
}

/** What the container manager needs from the network manager. */
export interface ContainerNetworks {
  /** Allocates an address (and ports) on a network and returns the interface to create. */
  prepareAttachment(id: string, o: AttachmentOptions): Promise<PlanInterface>;
  /**
   * Checks, before a container that will use `network` is created, that the network exists and
   * `ip` (when given) is a host address of its subnet. Absent: checked at start only.
   *
   * @throws NotFoundError `NETWORK_NOT_FOUND`; InvalidArgumentError naming `ip`.
   */
  checkAttachment?(o: { network: string; ip?: string }): Promise<void>;
  /** Frees a container's addresses and ports (on every network when `network` is absent). */
  releaseAttachment(id: string, network?: string, options?: { linksGone?: boolean }): Promise<void>;
  /** The hosts file of a container on its networks (self and peers). */
  hostsFileFor(id: string, self: { hostname: string; domainname?: string; extraHosts?: Array<{ names: string[]; address: string }> }): Promise<string>;
  /** A container's attachments. */
  attachmentsOf(id: string): Promise<Attachment[]>;
  /** Ids of every container holding an endpoint. */
  endpointContainerIds?(): Promise<string[]>;
}

/** What the container manager needs from the volume manager. */
export interface ContainerVolumes {
  /** Creates a volume if missing (idempotent). */
  create(name: string | undefined, options?: { anonymous?: boolean }): Promise<{ name: string; populated: boolean }>;
  /** A volume's record. */
  get(name: string): Promise<{ name: string; populated: boolean }>;
  /** The host directory of a volume. */
  mountpoint(name: string): string;
  /** Whether its init should copy image content in: empty, or a killed copy-up's leftovers (see `runtime/copy-up.ts`). */
  awaitsCopyUp(name: string): boolean;
  /** Marks the copy-up as done. */
  markPopulated(name: string): Promise<void>;
  /** Mounts a special volume on the host if needed. */
  acquire(name: string): Promise<void>;
  /** Unmounts a special volume no running container uses. */
  release(name: string): Promise<void>;
  /** Removes a volume. */
  remove(name: string, options?: { force?: boolean }): Promise<void>;
}

/** What the manager needs from the runtime: the seam unit tests replace. */
export interface ContainerRuntime {
  /**
   * Starts a container process; resolves once it runs (with the runtime's fds of its stdin pipe
   * and terminal master, when it has them); rejects with {@link StartFailure} when it cannot.
   */
  start(
    plan: Plan, logPath: string, exitPath: string, options?: { detach?: boolean; cgroups?: Promise<unknown>; log?: LogLimits },
  ): Promise<{ pid: number; startTime: number; stdinFd?: number; ttyFd?: number; holderPid?: number }>;
  /** Calls `listener` when a process this runtime started ends (after its output is drained). */
  onExit(listener: (id: string, status: ExitRecord) => void): () => void;
  /** Keeps the process alive until the returned function is called. */
  hold(): () => void;
  /** Runs a process in a running container; resolves once it runs (with a copy of its terminal's master, when it has one). */
  exec(
    plan: ExecPlan, onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void, options?: { stdinFd?: number },
  ): Promise<{ pid: number; startTime: number; exited: Promise<ExitRecord>; tty?: number }>;
  /** The pid of the process that owns started containers (the zygote), once there is one. */
  readonly pid: number | undefined;
}

/**
 * When `wait()` returns, as `docker wait --condition`: once the container is
 * not running (a created one returns at once), at its next exit, or once it is removed.
 */
export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** Options of `exec`. */
export interface ExecOptions {
  /** Environment merged over the container's. */
  env?: Record<string, string | number | boolean> | string[];
  /** `user[:group]`; default the container's user. */
  user?: string;
  /** Working directory; default the container's. */
  workdir?: string;
  /** Run it on a new terminal of this size (stdout and stderr are then one stream). */
  terminal?: { cols: number; rows: number };
  /** Give it a stdin pipe (without a terminal); default /dev/null. */
  stdin?: boolean;
}

/** A process {@link ContainerService.startExec} started; the caller owns the fds. */
export interface StartedExec {
  /** Host pid. */
  pid: number;
  /** Its start time (clock ticks since boot), to signal it safely. */
  startTime: number;
  /** Resolves when it has ended and its output is delivered. */
  exited: Promise<ExitRecord>;
  /** This process's copy of its terminal's master (input, resizing). */
  tty?: number;
  /** The write end of its stdin pipe. */
  stdin?: number;
}

/** What `exec` resolves with. */
export interface ExecResult {
  /** Exit code (128 + n for a signal). */
  exitCode: number;
  /** Everything the process wrote to stdout, as UTF-8 text. */
  stdout: string;
  /** Everything it wrote to stderr, as UTF-8 text. */
  stderr: string;
}

/** Filters of {@link ContainerService.list}. */
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
const ACTIVE_SUBSET = 'active';

/** The container manager of one engine. */
export class ContainerService {
  readonly #ctx: ContainerServiceContext;
  /** The records, one JSON file per container. */
  readonly records: RecordStore<ContainerRecord>;
  readonly #dir: string;
  readonly #runDir: string;
  readonly #exits = new EventEmitter<Record<string, [ExitRecord]>>();
  /** Exit codes of containers this engine auto-removed, so a late `wait()` still gets them. */
  readonly #autoRemoved = new Map<string, number>();
  /** Runs (`id:startTime`) whose cgroups this engine destroyed when it recorded their exit. */
  readonly #cgroupsDestroyed = new Set<string>();
  /** Releases of cgroups, network endpoints and volumes still under way, per container. */
  readonly #cleanups = new Map<string, Promise<void>>();
  /**
   * Exits this engine learnt of (from its zygote, or a read) that it could not record because the
   * disk is full, per container: reads report them all the same, and record them once they can.
   * `announced`: its releases ran; `died`: its `die` event is in the log.
   */
  readonly #unrecorded = new Map<string, { exit: ExitRecord; error: string; announced: boolean; died: boolean }>();
  #swept: Promise<void> | undefined;

  /** Creates the manager; touches nothing until used. */
  constructor(ctx: ContainerServiceContext) {
    this.#ctx = ctx;
    this.#dir = join(ctx.root, 'containers');
    this.#runDir = ctx.runRoot === undefined ? this.#dir : join(ctx.runRoot, 'containers');
    // Container state changes often and is rebuilt from the kernel when read: rename gives
    // atomicity; fsync (power-loss durability) is not worth ~0.5 ms on every transition.
    // The subset `active` (running, paused, restarting as recorded) is indexed: listing the
    // running containers reads those records only, however many exited ones the root holds.
    this.records = new RecordStore<ContainerRecord>({
      dir: this.#dir, kind: 'container', noun: 'container', schema: containerRecordSchema as never, fsync: false,
      subsets: { [ACTIVE_SUBSET]: (r) => isActive(r.state.status) },
    });
    ctx.zygote.onExit((id, status) => {
      void this.#recordExit(id, status)
        .then((rec) => (rec ? this.#applyRestartPolicy(rec) : undefined))
        .catch(() => undefined)
        .finally(() => this.#exits.emit(id, status));
    });
  }

  /** The file layout of container `id`. */
  paths(id: string): ContainerPaths {
    return containerPaths(this.#dir, id, this.#runDir);
  }

  /** Creates a container (does not start it). */
  async create(input: ContainerCreateOptions): Promise<ContainerRecord> {
    // ── validation: everything a bad input can be refused for, before any lookup, pull or record ──
    const opts = parseOptions(createOptionsSchema, input) as CheckedCreateOptions;
    if (opts.userns && opts.privileged) throw new InvalidArgumentError('userns', 'cannot be combined with privileged (capabilities in a user namespace are not the host\'s)');
    const seccomp = resolveSeccomp(opts.securityOpt ?? [], opts.privileged ?? false);
    // The user's own mounts (planned again below with the image's volumes and volumesFrom).
    planMounts({ ...(opts.mounts ? { mounts: opts.mounts } : {}), ...(opts.volumes ? { volumes: opts.volumes } : {}), newName: () => '' });
    const network = opts.network ?? 'bridge';
    if (network !== 'bridge' && network !== 'none' && network !== 'host' && !network.startsWith('container:')) {
      await this.#ctx.networks?.checkAttachment?.({ network, ...(opts.ip !== undefined ? { ip: opts.ip } : {}) });
    }
    // ── end validation ──
    await this.#sweep();
    // ── pull if missing (as `docker run`) ──
    const image = await this.#ctx.resolveImage(opts.image).catch(async (e: unknown) => {
      if (!(e instanceof NotFoundError) || e.code !== 'IMAGE_NOT_FOUND' || !(await this.#ctx.pullImage?.(opts.image))) throw e;
      return this.#ctx.resolveImage(opts.image);
    });
    // ── end pull if missing ──
    const id = randomBytes(32).toString('hex');
    const volumesFrom = await Promise.all((opts.volumesFrom ?? []).map(async (spec) => {
      const [ref, mode] = spec.split(':') as [string, string?];
      const from = await this.get(ref);
      return { mounts: from.config.mounts, ...(mode ? { readOnly: mode === 'ro' } : {}) };
    }));
    const mountPlan = planMounts({
      ...(opts.mounts ? { mounts: opts.mounts } : {}),
      ...(opts.volumes ? { volumes: opts.volumes } : {}),
      volumesFrom,
      imageVolumes: image.config.volumes ?? [],
      newName: () => randomBytes(32).toString('hex'),
    });
    if (opts.resources && Object.keys(opts.resources).length && !this.#ctx.cgroups) {
      throw new InvalidArgumentError('resources', 'this machine has no usable cgroup hierarchy, so limits cannot be applied');
    }
    const { config, path, args } = buildConfig(id, image.config, opts, mountPlan.mounts, seccomp);
    const name = (opts.name ?? '').replace(/^\//, '');
    const rec: ContainerRecord = {
      id, name, created: new Date().toISOString(), image: opts.image, imageId: image.id, path, args, config,
      layerDirs: image.layerDirs, state: initialState(),
    };
    if (name) await this.records.reserveName(name, id);
    try {
      createBindSources(mountPlan.dirsToCreate);
      for (const m of mountPlan.mounts) {
        if (m.type === 'volume') await this.#ctx.volumes.create(m.name, { anonymous: m.anonymous });
      }
      const p = this.paths(id);
      mkdirSync(p.dir, { recursive: true, mode: 0o700 });
      for (const d of [p.upper, p.work]) mkdirSync(d);
      if (opts.userns) {
        // Under a lock across processes: an 'auto' range is free until the record holding it is written.
        await withLock(join(this.#dir, 'userns.lock'), async () => {
          rec.config.userns = allocateUserns(opts.userns!, await this.records.list());
          await this.records.create(id, rec);
        });
      } else await this.records.create(id, rec);
    } catch (e) {
      rmSync(this.paths(id).dir, { recursive: true, force: true });
      rmSync(this.paths(id).runDir, { recursive: true, force: true });
      if (name) await this.records.releaseName(name, id);
      throw isNoSpace(e) ? fsError(e, 'mkdir', this.paths(id).dir) : e;
    }
    await this.#event('create', rec);
    return rec;
  }

  /**
   * Once per engine, before its first create: records the exit of every container whose owner
   * died (which releases its cgroups, endpoints and volumes), and frees endpoints still held for
   * containers that no longer exist (a crash in the middle of a removal).
   */
  #sweep(): Promise<void> {
    this.#swept ??= (async () => {
      await this.list(); // refreshes the active records: records the exits nobody saw
      await Promise.all([this.#dir, dirname(this.paths('0'.repeat(64)).runDir)].map((d) => sweepTrash(d, this.#dir)));
      await Promise.all([...this.#cleanups.values()]);
      for (const id of (await this.#ctx.networks?.endpointContainerIds?.()) ?? []) {
        if (!(await this.records.has(id))) await this.#ctx.networks?.releaseAttachment(id).catch(() => undefined);
      }
    })().catch(() => undefined);
    return this.#swept;
  }

  /** Resolves a name, id or unique id prefix to a record (with its status refreshed). */
  async get(ref: string): Promise<ContainerRecord> {
    const id = await this.records.resolve(ref.replace(/^\//, ''));
    const rec = await this.records.get(id);
    if (!rec) throw new NotFoundError('container', ref);
    return this.#refresh(rec);
  }

  /** Starts a created or exited container; resolves once its program runs. */
  async start(ref: string): Promise<ContainerRecord> {
    const first = await this.get(ref);
    const p = this.paths(first.id);
    return this.#start(first, p).catch((e: unknown) => {
      throw isNoSpace(e) ? fsError(e, 'write', p.runDir) : e;
    });
  }

  async #start(first: ContainerRecord, p: ContainerPaths): Promise<ContainerRecord> {
    return withLock(p.lock, async () => {
      const rec = await this.#refresh((await this.records.get(first.id)) ?? first);
      // Starting a running container is a no-op, as `docker start`.
      if (!can('start', rec.state.status)) return rec;
      await this.#cleanups.get(rec.id);
      mkdirSync(p.runDir, { recursive: true, mode: 0o700 });
      mkdirSync(p.rootfs, { recursive: true, mode: 0o700 });
      this.#writeEtcFiles(rec, p);
      rmSync(p.exit, { force: true });
      const zygote = this.#ctx.zygote;
      const vols = this.#ctx.volumes;
      const copyUp = new Set<string>();
      for (const m of rec.config.mounts) {
        if (m.type !== 'volume') continue;
        await vols.acquire(m.name);
        if (!m.nocopy && !(await vols.get(m.name)).populated && vols.awaitsCopyUp(m.name)) copyUp.add(m.name);
      }
      const mounts = rec.config.mounts.map((m) => userMount(m, (n) => vols.mountpoint(n), (n) => copyUp.has(n)));
      const net = await this.#attachNetwork(rec, p);
      const cg = this.#ctx.cgroups;
      // Once more if another process removed the shared parent cgroup in between (its last child left).
      const makeCgroup = () => cg!.create(rec.id, rec.config.resources as CgroupLimits, { allowAllDevices: rec.config.privileged });
      // Made while the init makes its mounts; it is let into them once they exist.
      const cgReady = cg ? makeCgroup().catch(() => makeCgroup()) : undefined;
      cgReady?.catch(() => undefined);
      // v1: the init moves itself through `tasks` (no global lock, no grace period); else the zygote moves it.
      const cgroups = { ...this.#cgroupJoin(rec.id), ...(cg ? { view: cg.view() } : {}) };
      let started;
      try {
        started = await zygote.start(buildPlan(runtimeSpec(rec, p, mounts, cgroups, net)), p.log, p.exit, { detach: rec.config.detach, log: rec.config.log, ...(cgReady ? { cgroups: cgReady } : {}) });
      } catch (e) {
        const cgError = await cgReady?.then(() => undefined, (err: unknown) => err);
        await cg?.destroy(rec.id).catch(() => undefined);
        await this.#ctx.networks?.releaseAttachment(rec.id).catch(() => undefined);
        if (cgError) throw cgError;
        if (!(e instanceof StartFailure)) throw e;
        const f = e.failure;
        await this.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, exitCode: f.exitCode, error: f.message } }));
        if (rec.config.autoRemove) await this.remove(rec.id, { force: true }).catch(() => undefined);
        if (f.kind === 'command') throw new CommandError(rec.path, f.exitCode, `cannot start container ${rec.name || rec.id.slice(0, 12)}: ${f.message}`);
        throw new BerthError(f.kind === 'user' ? 'INVALID_ARGUMENT' : 'KERNEL', `cannot start container ${rec.name || rec.id.slice(0, 12)}: ${f.message}`);
      }
      for (const n of copyUp) await vols.markPopulated(n);
      // A detached container's exit is recorded (and its stdio held) by its monitor.
      const zpid = started.holderPid ?? zygote.pid ?? 0;
      const zstart = processStartTime(zpid) ?? 0;
      const updated = await this.records.update(rec.id, (r) => ({
        ...r,
        state: {
          ...initialState(), restartCount: r.state.restartCount, status: 'running', pid: started.pid, startTime: started.startTime, bootId: currentBootId(),
          ownerPid: zpid, ownerStart: zstart, startedAt: new Date().toISOString(),
          stdio: started.stdinFd !== undefined || started.ttyFd !== undefined
            ? { holderPid: zpid, holderStart: zstart, ...(started.stdinFd !== undefined ? { stdinFd: started.stdinFd } : {}), ...(started.ttyFd !== undefined ? { ttyFd: started.ttyFd } : {}) }
            : null,
        },
      }));
      await this.#event('start', updated);
      this.#watchHealth(updated);
      return updated;
    });
  }

  /** Attaches the container to its network (bridge or user-defined); writes its hosts file. */
  async #attachNetwork(rec: ContainerRecord, p: ContainerPaths): Promise<{ interfaces?: PlanInterface[]; joinNetnsPid?: number }> {
    const c = rec.config;
    const extraHosts = c.net.extraHosts.map((h) => {
      const i = h.indexOf(':');
      return { names: [h.slice(0, i)], address: h.slice(i + 1) };
    });
    if (c.network.startsWith('container:')) {
      const other = await this.get(c.network.slice('container:'.length));
      assertCan('join', other.state.status, this.#label(other));
      copyFileSync(this.paths(other.id).hosts, p.hosts);
      copyFileSync(this.paths(other.id).resolvConf, p.resolvConf);
      return { joinNetnsPid: other.state.pid };
    }
    if (c.network === 'none' || c.network === 'host') return {};
    const nets = this.#ctx.networks;
    if (!nets) throw new BerthError('KERNEL', 'networking is not available in this engine');
    const iface = await nets.prepareAttachment(rec.id, {
      network: c.network, name: rec.name, hostname: c.hostname, aliases: c.net.aliases,
      ...(c.net.ip ? { ip: c.net.ip } : {}), ...(c.net.mac ? { mac: c.net.mac } : {}),
      ports: c.net.ports, publishAll: c.net.publishAll, exposedPorts: c.net.exposedPorts,
    });
    writeFileSync(p.hosts, await nets.hostsFileFor(rec.id, { hostname: c.hostname, ...(c.domainname ? { domainname: c.domainname } : {}), extraHosts }));
    return { interfaces: [iface] };
  }

  #writeEtcFiles(rec: ContainerRecord, p: ContainerPaths): void {
    const c = rec.config;
    writeFileSync(p.hostname, `${c.hostname}\n`);
    writeFileSync(p.hosts, hostsFile(c.hostname, c.domainname, c.net.extraHosts));
    let host = '';
    try {
      host = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      // No resolver configured on the host: the container gets an empty file.
    }
    writeFileSync(p.resolvConf, resolvConfFile(host, c.network !== 'host', c.net));
  }

  /** Recomputes the status of an active container from the kernel; records an exit it finds. */
  async #refresh(rec: ContainerRecord): Promise<ContainerRecord> {
    const s = rec.state;
    if (!isActive(s.status)) {
      if (this.#unrecorded.size) this.#unrecorded.delete(rec.id);
      return rec;
    }
    if (s.status === 'restarting') {
      // Between two runs: the owner restarts it; if the owner is gone, it stays exited.
      if (s.bootId === currentBootId() && isSameProcess(s.ownerPid, s.ownerStart)) return rec;
      const exited = (r: ContainerRecord): ContainerRecord => (r.state.status === 'restarting' ? { ...r, state: { ...r.state, status: 'exited' } } : r);
      // A read never needs space: on a full disk the next read finds the same.
      return this.records.update(rec.id, exited).catch((e: unknown) => {
        if (isNoSpace(e)) return exited(rec);
        throw e;
      });
    }
    if (s.bootId === currentBootId() && isSameProcess(s.pid, s.startTime)) return rec;
    const known = this.#unrecorded.get(rec.id);
    if (known?.exit.pid === s.pid) return (await this.#recordExit(rec.id, known.exit, known.error)) ?? rec;
    const exit = readJsonFileSync(this.paths(rec.id).exit);
    const parsed = parseExitRecord(exit);
    if (parsed && parsed.pid === s.pid) return (await this.#recordExit(rec.id, parsed)) ?? rec;
    // The process is gone without an exit file: only final once its owner is gone too.
    if (s.bootId === currentBootId() && isSameProcess(s.ownerPid, s.ownerStart)) return rec;
    return (await this.#recordExit(rec.id, { pid: s.pid, exitCode: 137, signal: SIGNALS.SIGKILL!, finishedAt: Date.now() }, 'the engine process that owned it exited')) ?? rec;
  }

  /**
   * Moves a running record to exited (once, whoever sees the exit first) and emits `die`. On a
   * full disk the exit is not recorded but returned all the same (reads never need space), and
   * kept to be recorded by a later read; its releases run once, its `die` event is written once.
   */
  async #recordExit(id: string, exit: ExitRecord, error = ''): Promise<ContainerRecord | undefined> {
    let changed = false;
    let rec: ContainerRecord;
    const oomKilled = exit.exitCode === 137 ? await this.#ctx.cgroups?.oomKilled(id).catch(() => false) ?? false : false;
    // Removed already (e.g. after a failed start): nothing to record, and nothing to create.
    if (!(await this.records.has(id))) return undefined;
    const exited = (r: ContainerRecord): ContainerRecord => {
      if (!can('exit', r.state.status) || r.state.pid !== exit.pid) return r;
      changed = true;
      return {
        ...r,
        state: {
          ...r.state, status: 'exited', exitCode: exit.exitCode, signal: exit.signal ?? null,
          finishedAt: new Date(exit.finishedAt).toISOString(), error: exit.error?.message ?? error, stopping: false,
          oomKilled,
        },
      };
    };
    let recorded = true;
    try {
      rec = await this.records.update(id, exited);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      if (!isNoSpace(e)) throw e;
      const current = await this.records.get(id);
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
      // What the run held is released off the waiter's path (after this turn of the event loop,
      // which records the exit and wakes waiters: the cgroup calls are synchronous); remove()
      // and start() wait for it.
      const held = rec;
      this.#cleanups.set(id, (async () => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const cg = this.#ctx.cgroups;
        if (cg && (await cg.destroy(id).then(() => true, () => false))) this.#cgroupsDestroyed.add(`${id}:${held.state.startTime}`);
        if (!['none', 'host'].includes(held.config.network)) await this.#ctx.networks?.releaseAttachment(id, undefined, { linksGone: true }).catch(() => undefined);
        await this.#releaseVolumes(held);
      })().finally(() => this.#cleanups.delete(id)));
    }
    if (!state.died) {
      // On a full disk, written by the read that records the exit (a read never fails for want of space).
      try {
        if (oomKilled) await this.#event('oom', rec);
        await this.#event('die', rec, { exitCode: String(exit.exitCode) });
        state.died = true;
      } catch (e) {
        if (!isNoSpace(e)) throw e;
      }
    }
    if (rec.config.autoRemove && !this.#autoRemoved.has(id)) {
      this.#autoRemoved.set(id, exit.exitCode);
      if (this.#autoRemoved.size > 1000) this.#autoRemoved.delete(this.#autoRemoved.keys().next().value!);
      await this.remove(id, { force: true, volumes: true }).catch(() => undefined);
    }
    return rec;
  }

  /**
   * Waits until the container is not running and returns its exit code. A container that was
   * never started resolves at once (Docker's `not-running` condition).
   */
  async wait(ref: string, signal?: AbortSignal, condition: WaitCondition = 'not-running'): Promise<{ exitCode: number; record?: ContainerRecord }> {
    let rec: ContainerRecord;
    try {
      rec = await this.get(ref);
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
      condition === 'not-running' ? !running(r)
        : condition === 'next-exit' ? !running(r) && r.state.finishedAt !== firstFinish
          : false;
    const hold = this.#ctx.zygote.hold();
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
        const next = await this.records.get(id);
        if (!next) {
          const code = this.#autoRemoved.get(id);
          if (code !== undefined) return { exitCode: code };
          if (condition === 'removed') return { exitCode: rec.state.exitCode ?? 0 };
          throw new NotFoundError('container', ref, `container ${this.#label(rec)} was removed while waiting for it`);
        }
        rec = await this.#refresh(next);
      }
      return { exitCode: rec.state.exitCode ?? 0, record: rec };
    } finally {
      hold();
    }
  }

  /** Sends `signal` to the container's PID 1. Throws NOT_RUNNING when it does not run. */
  async kill(ref: string, signal: number): Promise<void> {
    const rec = await this.get(ref);
    assertCan('kill', rec.state.status, this.#label(rec));
    // Through the reserve: the container may be what filled the disk (see state/reserve.ts).
    await this.#spare(() => this.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, manualStop: true } })));
    this.#signal(rec, signal);
    await this.#spare(() => this.#event('kill', rec, { signal: String(signal) }));
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
    rec = await this.#spare(() => this.records.update(rec.id, (r) => ({
      ...r, state: { ...r.state, manualStop: true, ...(r.state.status === 'restarting' ? { status: 'exited' as const } : {}) },
    })));
    if (!can('stop', rec.state.status)) {
      await this.#spare(() => this.#event('stop', rec));
      return rec;
    }
    this.#signal(rec, rec.config.stopSignal);
    await this.#spare(() => this.#event('kill', rec, { signal: String(rec.config.stopSignal) }));
    if (t >= 0) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), t * 1000);
      try {
        rec = (await this.wait(rec.id, ac.signal).catch(() => undefined))?.record ?? rec;
      } finally {
        clearTimeout(timer);
      }
      if (isActive(rec.state.status)) {
        this.#signal(rec, SIGNALS.SIGKILL!);
        await this.#spare(() => this.#event('kill', rec, { signal: String(SIGNALS.SIGKILL) }));
      }
    }
    rec = (await this.wait(rec.id)).record ?? rec;
    await this.#cleanups.get(rec.id);
    await this.#spare(() => this.#event('stop', rec));
    return rec;
  }

  /** Removes a container. A running one is refused unless `force` (then it is killed first). */
  async remove(ref: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    let rec = await this.get(ref);
    if (!can('remove', rec.state.status)) {
      if (!options.force) throw stateError('remove', rec.state.status, this.#label(rec));
      this.#signal(rec, SIGNALS.SIGKILL!);
      rec = (await this.wait(rec.id)).record ?? rec;
    }
    await this.#cleanups.get(rec.id);
    // Destroyed already when this engine recorded the exit of this very run; else (another
    // process ran it, or it never ran) once more, which is a no-op when there is nothing.
    if (!this.#cgroupsDestroyed.delete(`${rec.id}:${rec.state.startTime}`)) await this.#ctx.cgroups?.destroy(rec.id).catch(() => undefined);
    if (!['none', 'host'].includes(rec.config.network)) await this.#ctx.networks?.releaseAttachment(rec.id).catch(() => undefined);
    // Deleted first, recorded after (nothing here needs space but the `destroy` event, which the
    // root's reserve makes room for on a full disk; see state/reserve.ts).
    const deleted = await this.records.delete(rec.id);
    const unrecorded = this.#unrecorded.get(rec.id);
    this.#unrecorded.delete(rec.id);
    if (rec.name) await this.records.releaseName(rec.name, rec.id);
    const deletions = [this.paths(rec.id).dir, this.paths(rec.id).runDir].map(discardDir);
    if (spaceIsLow(this.#ctx.root)) {
      // Someone is likely waiting for this space: it is back when remove() returns.
      await Promise.all(deletions);
      ensureReserve(this.#ctx.root);
    }
    // A `die` a full disk kept out of the log goes in before the `destroy`.
    if (unrecorded && !unrecorded.died) await this.#spare(() => this.#event('die', rec, { exitCode: String(unrecorded.exit.exitCode) }));
    if (deleted) await this.#spare(() => this.#event('destroy', rec));
    if (options.volumes) {
      for (const m of rec.config.mounts) {
        if (m.type === 'volume' && m.anonymous) await this.#ctx.volumes.remove(m.name, { force: true }).catch(() => undefined);
      }
    }
  }

  async #releaseVolumes(rec: ContainerRecord): Promise<void> {
    for (const m of rec.config.mounts) {
      if (m.type === 'volume') await this.#ctx.volumes.release(m.name).catch(() => undefined);
    }
  }

  /** Ids of containers (any status, or active only) that mount volume `name`. */
  async volumeUsers(name: string, activeOnly = false): Promise<string[]> {
    const recs = await this.records.list(activeOnly ? { subset: ACTIVE_SUBSET } : {});
    return (await Promise.all(recs.map((r) => (activeOnly ? this.#refresh(r) : r))))
      .filter((r) => (!activeOnly || isActive(r.state.status)) && r.config.mounts.some((m) => m.type === 'volume' && m.name === name))
      .map((r) => r.id);
  }

  /**
   * Lists containers (running only unless `all`), newest first. Without `all`, and with only
   * active statuses asked for, only the records of active containers are read (an index).
   */
  async list(filter: ContainerListFilter = {}): Promise<ContainerRecord[]> {
    const activeOnly = !filter.all && (filter.status ?? []).every((s) => isActive(s));
    const refreshed = await Promise.all((await this.records.list(activeOnly ? { subset: ACTIVE_SUBSET } : {})).map((r) => this.#refresh(r)));
    // A refresh may have recorded an exit and auto-removed the container.
    const present = await Promise.all(refreshed.map((r) => (r.config.autoRemove ? this.records.has(r.id) : true)));
    const recs = refreshed.filter((_, i) => present[i]);
    return recs
      .filter((r) => (filter.all || filter.status?.length ? true : isActive(r.state.status)))
      .filter((r) => !filter.status?.length || filter.status.includes(r.state.status))
      .filter((r) => !filter.name?.length || filter.name.some((n) => r.name.includes(n.replace(/^\//, ''))))
      .filter((r) => (filter.label ?? []).every((l) => {
        const i = l.indexOf('=');
        return i < 0 ? l in r.config.labels : r.config.labels[l.slice(0, i)] === l.slice(i + 1);
      }))
      .sort((a, b) => b.created.localeCompare(a.created));
  }

  /**
   * Runs `command` in the running container (its namespaces, root, capabilities), as
   * `docker exec`; resolves with its exit code and output. A command that cannot be executed
   * throws `COMMAND_NOT_FOUND`. With a terminal, all output is in `stdout`.
   */
  async exec(ref: string, command: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const running = await this.startExec(ref, command, { ...opts, stdin: false }, (stream, data) => (stream === 'stdout' ? out : err).push(data));
    try {
      const status = await running.exited;
      return { exitCode: status.exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
    } finally {
      if (running.tty !== undefined) close(running.tty);
    }
  }

  /**
   * Starts `command` in the running container and resolves once it runs, as `docker exec -i`
   * (with `stdin`) or `-it` (with `terminal`); its output goes to `onOutput` as it comes.
   */
  async startExec(ref: string, command: string[], opts: ExecOptions, onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void): Promise<StartedExec> {
    const rec = await this.get(ref);
    assertCan('exec', rec.state.status, this.#label(rec));
    const c = rec.config;
    const seccomp = seccompFilter(c.seccomp, c.privileged, c.capabilities);
    const plan: ExecPlan = {
      id: randomBytes(16).toString('hex'),
      targetPid: rec.state.pid,
      targetStartTime: rec.state.startTime,
      process: {
        args: command,
        env: mergeEnv(c.env, opts.env),
        cwd: opts.workdir ?? c.workdir,
        user: opts.user ?? c.user,
        noNewPrivileges: c.noNewPrivileges,
        capabilities: c.capabilities,
        ...(opts.terminal ? { terminal: opts.terminal } : {}),
        ...processLimits(c),
        ...(seccomp ? { seccomp } : {}),
      },
      capabilityMask: capabilityMask(c.capabilities).toString(),
      cgroupProcs: this.#execCgroupFiles(rec.id),
    };
    const pipe = opts.stdin && !opts.terminal ? pipe2(O_CLOEXEC) : undefined;
    try {
      const running = await this.#ctx.zygote.exec(plan, onOutput, pipe ? { stdinFd: pipe[0] } : {});
      // Docker's exec events (it creates and starts an exec in two calls; here they are one).
      const execAttrs = { execID: plan.id, command: command.join(' ') };
      // The exec runs already: an event that cannot be written (a full disk) does not undo it.
      await this.#event('exec_create', rec, execAttrs).catch(() => undefined);
      await this.#event('exec_start', rec, execAttrs).catch(() => undefined);
      // The program was found, but the kernel may still refuse it (a bad binary format).
      const exited = running.exited.then(async (s) => {
        await this.#event('exec_die', rec, { ...execAttrs, exitCode: String(s.exitCode) }).catch(() => undefined);
        if (s.error?.kind === 'command') throw new CommandError(command[0] ?? '', s.exitCode, `cannot exec in container ${this.#label(rec)}: ${s.error.message}`);
        return s;
      });
      return { ...running, exited, ...(pipe ? { stdin: pipe[1] } : {}) };
    } catch (e) {
      if (pipe) close(pipe[1]);
      if (!(e instanceof StartFailure)) throw e;
      const f = e.failure;
      if (f.kind === 'command') throw new CommandError(command[0] ?? '', f.exitCode, `cannot exec in container ${this.#label(rec)}: ${f.message}`);
      if (f.step === 'join') throw stateError('exec', 'exited', this.#label(rec), { cause: e });
      throw new BerthError(f.kind === 'user' ? 'INVALID_ARGUMENT' : 'KERNEL', `cannot exec in container ${this.#label(rec)}: ${f.message}`);
    } finally {
      // The zygote has its own copy of the read end by now.
      if (pipe) close(pipe[0]);
    }
  }

  /**
   * Copies, into this process, the running container's stdin (the write end of its stdin pipe)
   * and terminal master from the process that holds them. Both absent when it has neither, or
   * it no longer runs.
   */
  async stdinOf(ref: string, input = true): Promise<{ record: ContainerRecord; stdin?: number; tty?: number }> {
    const rec = await this.get(ref);
    const s = rec.state;
    assertCan('attach', s.status, this.#label(rec));
    const io = s.stdio;
    if (!io || !input) return { record: rec };
    const alive = () => isSameProcess(s.pid, s.startTime);
    const stdin = io.stdinFd !== undefined ? copyHolderFd(io.holderPid, io.holderStart, io.stdinFd, 'pipe', alive) : undefined;
    const tty = io.ttyFd !== undefined ? copyHolderFd(io.holderPid, io.holderStart, io.ttyFd, 'terminal', alive) : undefined;
    return { record: rec, ...(stdin !== undefined ? { stdin } : {}), ...(tty !== undefined ? { tty } : {}) };
  }

  /** Whether the container's current run is still going (its process alive). */
  async isRunning(id: string): Promise<boolean> {
    const rec = await this.records.get(id);
    if (!rec) return false;
    return isActive((await this.#refresh(rec)).state.status);
  }

  /** Sends `signal` to a process started by {@link startExec}, unless it has ended. */
  signalExec(pid: number, startTime: number, signal: number): void {
    signalProcess(pid, startTime, signal);
  }

  /** What an exec's (single-threaded) child writes `0` to: v1 `tasks` files (no global lock), else `cgroup.procs`. */
  #execCgroupFiles(id: string): string[] {
    const how = this.#cgroupJoin(id);
    return how.tasks ?? how.procs;
  }

  /** How a fresh single-threaded process joins container `id`'s cgroups: v1 `tasks` files when there are any, else `cgroup.procs`. */
  #cgroupJoin(id: string): { tasks: string[]; procs?: undefined } | { procs: string[]; tasks?: undefined } {
    const cg = this.#ctx.cgroups;
    if (!cg) return { procs: [] };
    const tasks = cg.threadJoinFiles(id);
    return tasks.length ? { tasks } : { procs: cg.paths(id).map((d) => join(d, 'cgroup.procs')) };
  }

  #cgroups(rec: ContainerRecord, verb: string): CgroupDriver {
    if (!this.#ctx.cgroups) throw new BerthError('KERNEL', `cannot ${verb} container ${this.#label(rec)}: this machine has no usable cgroup hierarchy`);
    return this.#ctx.cgroups;
  }

  /** The record of `ref`, once its status accepts `verb`. */
  async #accepting(ref: string, verb: ContainerVerb): Promise<ContainerRecord> {
    const rec = await this.get(ref);
    assertCan(verb, rec.state.status, this.#label(rec));
    return rec;
  }

  /** Freezes every process of a running container (cgroup freezer), as `docker pause`. */
  async pause(ref: string): Promise<ContainerRecord> {
    const rec = await this.#accepting(ref, 'pause');
    await this.#cgroups(rec, 'pause').freeze(rec.id);
    const next = await this.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, status: 'paused' } }));
    await this.#event('pause', next);
    return next;
  }

  /** Thaws a paused container, as `docker unpause`. */
  async unpause(ref: string): Promise<ContainerRecord> {
    const rec = await this.#accepting(ref, 'unpause');
    await this.#cgroups(rec, 'unpause').thaw(rec.id);
    const next = await this.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, status: 'running' } }));
    await this.#event('unpause', next);
    return next;
  }

  /** Changes the limits of a container (live when it runs), as `docker update`. */
  async update(ref: string, resources: CgroupLimits): Promise<ContainerRecord> {
    const rec = await this.get(ref);
    const merged = { ...rec.config.resources, ...resources } as Record<string, number | string>;
    if (isActive(rec.state.status)) await this.#cgroups(rec, 'update').update(rec.id, resources);
    const next = await this.records.update(rec.id, (r) => ({ ...r, config: { ...r.config, resources: merged } }));
    await this.#event('update', next);
    return next;
  }

  /** One sample of a running container's cgroup figures. */
  async stats(ref: string): Promise<CgroupStats> {
    const rec = await this.#accepting(ref, 'stat');
    return this.#cgroups(rec, 'stat').stats(rec.id);
  }

  /** Host pids of every process in a running container. */
  async pids(ref: string): Promise<number[]> {
    const rec = await this.#accepting(ref, 'top');
    return this.#ctx.cgroups ? this.#ctx.cgroups.pids(rec.id) : [rec.state.pid];
  }

  // ── file system: diff, export, copy, commit layer; rename ──

  /** The changes of the container's file system against its image, as `docker diff`. */
  async diff(ref: string): Promise<ContainerChange[]> {
    const rec = await this.get(ref);
    return upperChanges(this.paths(rec.id).upper, rec.layerDirs, mountPoints(rec));
  }

  /**
   * The container's whole file system as a tar stream, as `docker export`: the union of its
   * upper dir over its image layers, read without mounting anything. Looked up when first read.
   */
  export(ref: string): Readable {
    const gen = async function* (this: ContainerService): AsyncGenerator<Buffer> {
      const rec = await this.get(ref);
      yield* packItems(walkUnion([this.paths(rec.id).upper, ...rec.layerDirs]));
    };
    return Readable.from(gen.call(this), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /** The container's upper dir as an image layer tar (whiteouts as `.wh.` entries), for commit. */
  async layerTar(ref: string): Promise<{ record: ContainerRecord; tar: AsyncGenerator<Buffer> }> {
    const rec = await this.get(ref);
    return { record: rec, tar: packItems(walkUpper(this.paths(rec.id).upper, rec.layerDirs, mountPoints(rec))) };
  }

  /**
   * A tar of `path` inside the container, as `docker cp CONTAINER:path -`. The path is resolved
   * inside the container's root (symlinks never lead out of it). Looked up when first read.
   */
  copyFrom(ref: string, path: string): Readable {
    const gen = async function* (this: ContainerService): AsyncGenerator<Buffer> {
      const root = await this.#openRoot(ref);
      try {
        yield* packPath(root.fd, path);
      } finally {
        root.release();
      }
    };
    return Readable.from(gen.call(this), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /**
   * Extracts the tar `source` into the directory `path` inside the container, as
   * `docker cp - CONTAINER:path`; works on running and stopped containers.
   */
  async copyTo(ref: string, path: string, source: TarSource): Promise<void> {
    const root = await this.#openRoot(ref);
    try {
      await extractPath(root.fd, path, source);
    } finally {
      root.release();
    }
  }

  /**
   * An fd on the container's root: `/proc/<pid>/root` while it runs; otherwise a detached overlay
   * mount of its upper dir over its layers, while the container's lock is held (so it cannot
   * start meanwhile).
   */
  async #openRoot(ref: string): Promise<{ fd: number; release: () => void }> {
    const first = await this.get(ref);
    const p = this.paths(first.id);
    for (let attempt = 0; ; attempt++) {
      const rec = await this.get(first.id);
      if (isActive(rec.state.status)) {
        let fd = -1;
        try {
          fd = openFd(`/proc/${rec.state.pid}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC);
        } catch {
          // exited in between
        }
        if (fd >= 0 && isSameProcess(rec.state.pid, rec.state.startTime)) return { fd, release: () => close(fd) };
        if (fd >= 0) close(fd);
        if (attempt < 3) {
          await sleep(20);
          continue;
        }
      }
      const lock = await acquireLock(p.lock);
      try {
        const now = await this.get(first.id);
        if (isActive(now.state.status)) {
          // Started meanwhile: its root is reachable through its process (never mount it twice).
          if (attempt < 3) {
            lock.release();
            continue;
          }
          throw new BerthError('KERNEL', `cannot reach the root of container ${this.#label(now)}: its process root cannot be opened; retry`);
        }
        const fd = mountDetachedOverlay(p.upper, p.work, now.layerDirs);
        return { fd, release: () => { close(fd); lock.release(); } };
      } catch (e) {
        lock.release();
        throw e;
      }
    }
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
    if (name === rec.name) throw new ConflictError('NAME_CONFLICT', `container ${this.#label(rec)} is already named '${name}'`);
    await this.records.reserveName(name, rec.id);
    let next: ContainerRecord;
    try {
      next = await this.records.update(rec.id, (r) => ({ ...r, name }));
    } catch (e) {
      await this.records.releaseName(name, rec.id);
      throw e;
    }
    if (rec.name) await this.records.releaseName(rec.name, rec.id);
    await this.#event('rename', next, { oldName: rec.name });
    return next;
  }

  /** A container's networks, addresses and published ports. */
  async networkSettings(id: string): Promise<NetworkSettings> {
    const atts = (await this.#ctx.networks?.attachmentsOf(id)) ?? [];
    const out: NetworkSettings = { ipAddress: '', ports: [], networks: {} };
    for (const { network, endpoint } of atts) {
      const prefix = network.subnet.split('/')[1];
      out.networks[network.name] = { ipAddress: `${endpoint.address}/${prefix}`, gateway: network.gateway, macAddress: endpoint.mac, aliases: endpoint.aliases };
      out.ipAddress ||= endpoint.address;
      out.ports.push(...endpoint.ports);
    }
    return out;
  }

  /**
   * Runs the container's health check every `interval` while it runs, in the engine that started
   * it (timers do not keep the process alive): `starting` until the first result, `healthy` after
   * a success, `unhealthy` after `retries` failures in a row (failures in the start period do not
   * count). Each change is a `health_status: <status>` event; the last 5 results are kept.
   */
  #watchHealth(rec: ContainerRecord): void {
    const hc = rec.config.healthcheck;
    if (!hc) return;
    const pid = rec.state.pid;
    const started = Date.now();
    const args = hc.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', hc.test.slice(1).join(' ')] : hc.test[0] === 'CMD' ? hc.test.slice(1) : hc.test;
    const tick = async (): Promise<boolean> => {
      const now = await this.records.get(rec.id);
      if (!now || now.state.pid !== pid || !isActive(now.state.status)) return false;
      if (now.state.status === 'paused') return true;
      const begin = new Date();
      let exitCode = -1;
      let output = '';
      let timer: NodeJS.Timeout | undefined;
      try {
        const r = await Promise.race([
          this.exec(rec.id, args),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`health check timed out after ${hc.timeout} ms`)), hc.timeout);
          }),
        ]);
        exitCode = r.exitCode;
        output = `${r.stdout}${r.stderr}`.slice(0, 4096);
      } catch (e) {
        output = e instanceof Error ? e.message : String(e);
      } finally {
        clearTimeout(timer);
      }
      const inStartPeriod = Date.now() - started < hc.startPeriod;
      let before = '';
      const next = await this.records.update(rec.id, (r) => {
        if (r.state.pid !== pid) return r;
        const h = r.state.health;
        before = h.status;
        const log = [...h.log, { start: begin.toISOString(), end: new Date().toISOString(), exitCode, output }].slice(-5);
        let { status, failingStreak } = h;
        if (exitCode === 0) {
          status = 'healthy';
          failingStreak = 0;
        } else if (!inStartPeriod) {
          failingStreak++;
          if (failingStreak >= hc.retries) status = 'unhealthy';
        }
        return { ...r, state: { ...r.state, health: { status, failingStreak, log } } };
      });
      if (next.state.health.status !== before) await this.#event(`health_status: ${next.state.health.status}`, next);
      return true;
    };
    const schedule = () => {
      setTimeout(() => {
        void tick().then((again) => (again ? schedule() : undefined), () => schedule());
      }, hc.interval).unref();
    };
    void this.records.update(rec.id, (r) => (r.state.pid === pid ? { ...r, state: { ...r.state, health: { status: 'starting', failingStreak: 0, log: [] } } } : r))
      .then(schedule, () => undefined);
  }

  /**
   * Docker's restart policies, in the engine that owns the container: restarts it after an exit
   * unless it was stopped through berth, with delays doubling from 100 ms (reset after 10 s up).
   */
  async #applyRestartPolicy(rec: ContainerRecord): Promise<void> {
    const policy = rec.config.restart;
    if (policy === 'no' || rec.state.manualStop || rec.config.autoRemove) return;
    const [kind, max] = policy.split(':');
    if (kind === 'on-failure' && (rec.state.exitCode === 0 || (max !== undefined && rec.state.restartCount >= Number(max)))) return;
    const ranFor = rec.state.startedAt && rec.state.finishedAt ? Date.parse(rec.state.finishedAt) - Date.parse(rec.state.startedAt) : 0;
    const count = ranFor > 10_000 ? 0 : rec.state.restartCount;
    const delay = Math.min(100 * 2 ** count, 60_000);
    const waiting = await this.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, status: 'restarting', restartCount: r.state.restartCount + 1 } }));
    await this.#event('restart', waiting);
    const release = this.#ctx.zygote.hold();
    setTimeout(() => {
      release();
      void (async () => {
        const now = await this.records.get(rec.id);
        if (!now || now.state.status !== 'restarting' || now.state.manualStop) return;
        await this.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, status: 'exited' } }));
        await this.start(rec.id);
      })().catch(() => undefined);
    }, delay);
  }

  /** Ids of containers created from image `imageId` (used to refuse removing it). */
  async imageUsers(imageId: string): Promise<string[]> {
    return (await this.records.list()).filter((r) => r.imageId === imageId).map((r) => r.id);
  }

  #label(rec: ContainerRecord): string {
    return rec.name ? `'${rec.name}'` : rec.id.slice(0, 12);
  }

  async #event(action: string, rec: ContainerRecord, extra: Record<string, string> = {}): Promise<void> {
    await this.#ctx.appendEvent({
      type: 'container', action, id: rec.id,
      attributes: { name: rec.name, image: rec.image, ...rec.config.labels, ...extra },
    });
  }
}
