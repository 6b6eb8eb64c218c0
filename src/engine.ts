/**
 * The engine: one state root, its services, and its event stream.
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { EventHub } from './events/event-hub.js';
import { EventLog } from './events/event-log.js';
import type { BerthEvent } from './events/index.js';
import { followEvents, type EventsOptions } from './engine-events.js';
import { ImageService } from './image/service.js';
import { buildImage } from './image/build/builder.js';
import type { CheckedBuildOptions } from './image/build/run.js';
import type { BuildProgress } from './image/build/types.js';
import type { ImageInfo } from './image/types.js';
import { checkRegistrySettings } from './image/registry/settings.js';
import { parseAnyReference } from './image/reference.js';
import type { RegistrySettings } from './image/registry/types.js';
import { ContainerService } from './container/service.js';
import { VolumeService } from './volume/service.js';
import { NetworkService } from './network/service.js';
import { containerPaths } from './container/spec.js';
import { createCgroupDriver, type CgroupDriver } from './runtime/cgroups/index.js';
import { ZygoteClient } from './runtime/zygote-client.js';
import { checkEnginePrivileges } from './runtime/capabilities.js';
import { InvalidArgumentError, StateError } from './errors.js';
import { ensureReserve } from './state/reserve.js';
import { SnapshotStore } from './container/snapshot-store.js';
import { SNAPSHOT_LAYER } from './container/record.js';

/**
 * Options of {@link Engine}. The registry settings (`insecureRegistries`, `registryCAs`,
 * `maxConcurrentDownloads`, …) are described in {@link RegistrySettings}.
 */
export interface EngineOptions extends RegistrySettings {
  /**
   * Persistent state (images, containers, events). Default `$BERTH_ROOT`, else `/var/lib/berth`.
   * It holds a 1 MiB file, `reserve`, made when an engine opens it: the room that lets removals
   * complete once the disk is full (a full disk otherwise fails writes with `NO_SPACE`).
   */
  root?: string;
  /**
   * Volatile state, best on a tmpfs: what a reboot ends anyway (per container: generated /etc files,
   * the exit status of its run, its lock, its root mount point). Every process sharing `root` must
   * use the same one. Default `$BERTH_RUN_ROOT`, else `/run/berth`.
   */
  runRoot?: string;
}

export type { EventsOptions } from './engine-events.js';

let defaultEngine: Engine | undefined;

/** Marks engines, so that one made by another copy of berth (its ESM or CJS build) is recognised. */
const ENGINE_BRAND = Symbol.for('berth.engine.v1');

/**
 * One engine = one state directory. Several processes may use the same root at once: they see
 * one consistent state and each other's events.
 *
 * The engine is also an EventEmitter (eventemitter3) of the root's events: `engine.on('container', …)`
 * receives container events from every process sharing the root, as `docker events` shows.
 *
 * @example
 * ```ts
 * import { Engine, Container } from 'berth';
 * await using engine = new Engine({ root: '/tmp/berth-test' });
 * engine.on('container', (e) => console.log(e.action, e.id.slice(0, 12)));
 * const c = await Container.run('busybox', ['true'], { engine });
 * ```
 */
export class Engine extends EventHub {
  /** The persistent state root. */
  readonly root: string;
  /** The volatile state root. */
  readonly runRoot: string;
  /**
   * The append-only event log shared by every process using this root.
   * @internal
   */
  readonly eventLog: EventLog;
  /**
   * The helper process that forks containers for this engine (started on first use).
   * @internal
   */
  readonly zygote: ZygoteClient;
  #images: ImageService | undefined;
  readonly #registry: RegistrySettings;
  #containers: ContainerService | undefined;
  #volumes: VolumeService | undefined;
  #networks: NetworkService | undefined;
  #cgroups: CgroupDriver | undefined | null;
  #prepared = false;
  #snapshots: SnapshotStore | undefined;
  /** Aborted by {@link Engine.close}: ends every open {@link Engine.events} iterator. */
  readonly #closing = new AbortController();

  /**
   * Creates an engine over a state root; touches nothing until used. Its first use checks that
   * this process may run containers (root, with the capabilities the README's Requirements list)
   * and otherwise rejects with `PERMISSION_DENIED` saying what is missing, before it makes anything.
   */
  constructor(options: EngineOptions = {}) {
    const root = resolve(options.root ?? process.env.BERTH_ROOT ?? '/var/lib/berth');
    const log = new EventLog(root);
    super(log);
    this.root = root;
    this.runRoot = resolve(options.runRoot ?? process.env.BERTH_RUN_ROOT ?? '/run/berth');
    this.eventLog = log;
    this.zygote = new ZygoteClient();
    this.#registry = checkRegistrySettings(options);
    Object.defineProperty(this, ENGINE_BRAND, { value: true });
  }

  /** The engine the bare constructors (`new Image(ref)`, `Container.create(…)`) use: `$BERTH_ROOT` or `/var/lib/berth`. */
  static default(): Engine {
    defaultEngine ??= new Engine();
    return defaultEngine;
  }

  /**
   * Once, on first use: checks that this process has the privileges berth needs (root, or the
   * capabilities of {@link checkEnginePrivileges}), then makes the root. Nothing is made when the
   * check fails.
   */
  #prepare(): void {
    if (this.#prepared) return;
    checkEnginePrivileges();
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    // What lets a removal complete once the disk is full (see state/reserve.ts).
    ensureReserve(this.root);
    this.#prepared = true;
  }

  /**
   * The image store of this root.
   * @internal
   */
  get images(): ImageService {
    this.#prepare();
    this.#images ??= new ImageService({
      root: this.root,
      eventLog: this.eventLog,
      imageUsers: (id) => this.containers.imageUsers(id),
      registry: this.#registry,
      keepLayers: () => this.snapshots.layersInUse(),
    });
    return this.#images;
  }

  /**
   * Builds an image from a Dockerfile with this root's stores; `Image.build` validates its
   * options and calls this.
   * @internal
   */
  build(options: CheckedBuildOptions, emit: (p: BuildProgress) => void, signal: AbortSignal): Promise<ImageInfo> {
    return buildImage(
      {
        root: this.root,
        runRoot: this.runRoot,
        images: this.images,
        containers: this.containers,
        pull: async (ref, s) => {
          await this.images.pull(ref, {}, undefined, s);
        },
      },
      options,
      emit,
      signal,
    );
  }

  /**
   * The container manager of this root.
   * @internal
   */
  get containers(): ContainerService {
    this.#prepare();
    this.#containers ??= new ContainerService({
      root: this.root,
      runRoot: this.runRoot,
      appendEvent: (e) => this.eventLog.append(e),
      resolveImage: (ref) => this.images.resolveForRun(ref),
      layerDir: (id) => this.#layerDir(id),
      commitImage: (parentId, layer, options) => this.images.commitLayer(parentId, layer, options),
      pullImage: async (ref, signal) => {
        if (parseAnyReference(ref).kind === 'id') return false;
        await this.images.pull(ref, {}, undefined, signal);
        return true;
      },
      zygote: this.zygote,
      volumes: this.volumes,
      cgroups: this.cgroups,
      networks: this.networks,
    });
    return this.#containers;
  }

  /**
   * The cgroup driver (v1 or v2, detected at run time); undefined on a machine without usable cgroups.
   * @internal
   */
  get cgroups(): CgroupDriver | undefined {
    if (this.#cgroups === undefined) {
      try {
        this.#cgroups = createCgroupDriver();
      } catch {
        this.#cgroups = null;
      }
    }
    return this.#cgroups ?? undefined;
  }

  /**
   * The volume manager of this root.
   * @internal
   */
  get volumes(): VolumeService {
    this.#prepare();
    this.#volumes ??= new VolumeService({
      root: this.root,
      appendEvent: (e) => this.eventLog.append(e),
      users: {
        containersUsing: (name) => this.containers.volumeUsers(name),
        runningContainersUsing: (name) => this.containers.volumeUsers(name, true),
      },
    });
    return this.#volumes;
  }

  /**
   * The network manager of this root.
   * @internal
   */
  get networks(): NetworkService {
    this.#prepare();
    this.#networks ??= new NetworkService({
      root: this.root,
      appendEvent: (e) => this.eventLog.append(e),
      // A container's generated hosts file lives under the engine's volatile root (see ContainerPaths).
      hostsPath: (id) => containerPaths(join(this.root, 'containers'), id, join(this.runRoot, 'containers')).hosts,
    });
    return this.#networks;
  }

  /**
   * Events of this root, as `docker events`: past ones from `since`, then live ones (from every
   * process sharing the root) until `until` passes or the loop is left.
   *
   * @example
   * ```ts
   * for await (const e of engine.events({ type: ['container'], action: ['die'] })) console.log(e.id, e.attributes.exitCode);
   * ```
   *
   * {@link Engine.close} ends the iterator as a `break` would: a pending `next()` resolves
   * `{ done: true }` (as `docker events` ends quietly when its daemon goes away). `signal` and
   * `timeout` (ms) end it too, but the iterator then throws `ABORTED` or `TIMEOUT`, as
   * `logs({ follow: true })` does.
   *
   * @throws StateError (`INVALID_STATE`) once the engine is closed.
   */
  events(options: EventsOptions = {}): AsyncIterable<BerthEvent> {
    if (this.#closing.signal.aborted)
      throw new StateError(
        'closed',
        'events',
        'this engine is closed: open a new Engine on the root to follow its events',
      );
    this.#prepare();
    return followEvents(this.eventLog, options, this.#closing.signal);
  }

  /**
   * Stops this engine's helper process. Containers it started are killed with it (they belong to
   * their creator); records stay, and later reads see them as exited. Every open
   * {@link Engine.events} iterator ends (a pending `next()` resolves `{ done: true }`), and
   * {@link Engine.events} refuses new calls; open `logs({ follow: true })` and `stats()` iterators
   * end at their next poll.
   */
  close(): void {
    this.#closing.abort();
    if (this.#containers) this.#containers.closed = true;
    this.removeAllListeners();
    this.zygote.close();
    // Gone with the last container that used it, whichever engine closes last.
    void this.#cgroups?.removeParent().catch(() => undefined);
    void this.#images?.registry.close();
  }

  /**
   * The snapshots of this root (see `container/snapshot-store.ts`).
   * @internal
   */
  get snapshots(): SnapshotStore {
    this.#prepare();
    this.#snapshots ??= new SnapshotStore({
      root: this.root,
      containers: () => this.containers,
      layerDir: (id) => this.#layerDir(id),
      releaseLayers: (ids) => this.images.releaseLayers(ids),
    });
    return this.#snapshots;
  }

  /** The tree of a layer a container record names: a snapshot's, or the layer store's. */
  #layerDir(id: string): string {
    return SNAPSHOT_LAYER.test(id) ? this.snapshots.layerDir(id) : this.images.layers.fsDir(id);
  }

  /** Same as {@link Engine.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/**
 * Schema of the `engine` option every public class takes: an {@link Engine} (of this copy of
 * berth or of another one loaded in the process, such as its CJS build), or absent for
 * {@link Engine.default}.
 */
export const engineSchema = z
  .custom<Engine>(
    (v) =>
      v instanceof Engine ||
      (typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[ENGINE_BRAND] === true),
    'expected an Engine (new Engine({ root })), or no engine for the default one',
  )
  .optional();

/**
 * The `engine` of a public call's options, checked: undefined when absent (the caller then uses
 * {@link Engine.default}).
 *
 * @throws InvalidArgumentError naming `engine` when it is set to anything but an {@link Engine}.
 */
export function engineOption(options: { engine?: unknown } | undefined | null): Engine | undefined {
  const value = typeof options === 'object' && options !== null ? options.engine : undefined;
  const r = engineSchema.safeParse(value);
  if (!r.success)
    throw new InvalidArgumentError('engine', r.error.issues[0]?.message ?? 'expected an Engine', { cause: r.error });
  return r.data;
}
