/**
 * What the container manager needs from the rest of the engine (its context: the runtime, the
 * volume and network managers, the cgroup driver, the event log), and what its parts share
 * ({@link ContainerCore}).
 *
 * @module
 */
import { join } from 'node:path';
import type { RecordStore } from '../state/record-store.js';
import type { PlanInterface } from '../runtime/plan-interface.js';
import type { Attachment, AttachmentOptions } from '../network/service.js';
import type { CgroupDriver } from '../runtime/cgroups/index.js';
import type { ExecPlan } from '../runtime/init.js';
import type { Plan } from '../runtime/plan.js';
import type { LogLimits } from '../runtime/log-writer.js';
import type { ExitRecord } from '../runtime/protocol.js';
import type { ContainerRecord } from './record.js';
import type { ContainerPaths, ImageRunConfig } from './spec.js';
import type { OciContainerConfig } from '../image/image-config.js';

/**
 * An image resolved for running a container: what a container is made from. The image manager
 * resolves a reference to one; the image builder hands one to `ContainerService.create` directly
 * for a chain of layers that is no image (a build step's parent), so no image record is needed.
 */
export interface ResolvedImage {
  /** The image id, recorded as the container's `imageId` (a build step's parent id for the builder). */
  id: string;
  /** The container defaults the image carries. */
  config: ImageRunConfig;
  /** The layers' diffIDs, topmost first (the overlay's lower dirs, in order); each one in the layer store. */
  layers: string[];
}

/** How `docker commit` records a container's layer as an image (see {@link ContainerServiceContext.commitImage}). */
export interface CommitImageOptions {
  /** The tag the new image gets. Absent: untagged. */
  ref?: string;
  /** The new image's container config, from its parent's. */
  runConfig(parent: OciContainerConfig): OciContainerConfig;
  /** The history entry's author. */
  author?: string;
  /** The history entry's comment. */
  comment?: string;
  /** The history entry's command. */
  createdBy?: string;
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
  appendEvent(e: {
    type: 'container';
    action: string;
    id: string;
    attributes: Record<string, string>;
  }): Promise<unknown>;
  /** Resolves an image for running: its id, run config and layers (topmost first). */
  resolveImage(ref: string): Promise<ResolvedImage>;
  /** The directory of layer `diffId`'s unpacked tree (an overlay lower dir), whether or not it exists. */
  layerDir(diffId: string): string;
  /**
   * Records `layer` (a layer tar) over image `parentId` as a new image, as `docker commit`;
   * resolves with the new image's id.
   */
  commitImage(parentId: string, layer: AsyncIterable<Buffer>, options: CommitImageOptions): Promise<{ id: string }>;
  /**
   * Pulls a missing image, as `docker run` does, until `signal` fires; resolves false when `ref`
   * cannot be pulled (an id). Absent: no pulling.
   */
  pullImage?(ref: string, signal?: AbortSignal): Promise<boolean>;
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
  hostsFileFor(
    id: string,
    self: { hostname: string; domainname?: string; extraHosts?: Array<{ names: string[]; address: string }> },
  ): Promise<string>;
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
    plan: Plan,
    logPath: string,
    exitPath: string,
    options?: { detach?: boolean; cgroups?: Promise<unknown>; log?: LogLimits; timeout?: number },
  ): Promise<{ pid: number; startTime: number; stdinFd?: number; ttyFd?: number; holderPid?: number }>;
  /** Calls `listener` when a process this runtime started ends (after its output is drained). */
  onExit(listener: (id: string, status: ExitRecord) => void): () => void;
  /** Keeps the process alive until the returned function is called. */
  hold(): () => void;
  /** Runs a process in a running container; resolves once it runs (with a copy of its terminal's master, when it has one). */
  exec(
    plan: ExecPlan,
    onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void,
    options?: { stdinFd?: number },
  ): Promise<{ pid: number; startTime: number; exited: Promise<ExitRecord>; tty?: number }>;
  /** The pid of the process that owns started containers (the zygote), once there is one. */
  readonly pid: number | undefined;
}

/**
 * What the parts of the container manager (`service.ts`, `run-resources.ts`, `run-state.ts`,
 * `exec.ts`, `supervise.ts`) share: the engine's context, the records, the file layout and the
 * event log.
 */
export interface ContainerCore {
  /** The engine's context. */
  readonly ctx: ContainerServiceContext;
  /** The records, one JSON file per container. */
  readonly records: RecordStore<ContainerRecord>;
  /** The file layout of container `id`. */
  paths(id: string): ContainerPaths;
  /** Appends a `container` event about `rec` to the engine's event log. */
  event(action: string, rec: ContainerRecord, extra?: Record<string, string>): Promise<void>;
}

/**
 * How a fresh single-threaded process joins container `id`'s cgroups: v1 `tasks` files when there
 * are any, else `cgroup.procs`.
 */
export function cgroupJoin(
  cg: CgroupDriver | undefined,
  id: string,
): { tasks: string[]; procs?: undefined } | { procs: string[]; tasks?: undefined } {
  if (!cg) return { procs: [] };
  const tasks = cg.threadJoinFiles(id);
  return tasks.length ? { tasks } : { procs: cg.paths(id).map((d) => join(d, 'cgroup.procs')) };
}
