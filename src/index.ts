/**
 * berth: a daemonless container engine for Node.js. Images, containers and their events,
 * in-process, straight on the Linux kernel.
 *
 * @packageDocumentation
 */
import { Container } from './container/container.js';
import type { RunOptions } from './container/handle-options.js';
import { Image } from './image/image.js';
import { Snapshot } from './container/snapshot.js';

export { Engine, type EngineOptions, type EventsOptions } from './engine.js';
export { Image } from './image/image.js';
export type * from './image/image.js';
export { buildBusyboxRootfs, type BusyboxRootfs, type BusyboxRootfsOptions } from './image/busybox-rootfs.js';
export { Container } from './container/container.js';
export type {
  ContainerLogs,
  ContainerExecOptions,
  ContainerExecRunOptions,
  ContainerSpawnOptions,
  ContainerAttachOptions,
  ContainerStats,
  ContainerListOptions,
  CreateOptions,
  EngineOption,
  RunOptions,
  WaitResult,
  ContainerCommitOptions,
  ContainerConnectOptions,
  ContainerStartOptions,
} from './container/handle-options.js';
export type { ContainerCreateOptions } from './container/options.js';
export type { Ulimit } from './container/limits.js';
export { ContainerProcess, ContainerAttachment, type ProcessExit } from './container/process.js';
export type { ExecResult, WaitCondition } from './container/service.js';
export type { ChangeKind, ContainerChange } from './container/fs/union.js';
export type { MountOptions } from './container/mounts.js';
export type { UsernsOption } from './container/userns.js';
export type { LogOptions } from './container/log-options.js';
export type { IdMapping } from './runtime/plan.js';
export {
  Volume,
  type VolumeCreateOptions,
  type VolumeEngineOption,
  type VolumeInfo,
  type VolumeListOptions,
} from './volume/volume.js';
export type { ContainerInfo, ContainerSummary, NetworkSettings } from './container/info.js';
export { CONTAINER_STATUSES, type ContainerStatus } from './container/record.js';
export type { LogLine, LogsOptions } from './container/logs.js';
export type { LogStream } from './runtime/log-format.js';
export {
  EVENT_TYPES,
  EventHub,
  type BerthEvent,
  type EventFilter,
  type EventHubEvents,
  type EventTime,
  type EventType,
} from './events/index.js';
export { Operation, type OperationWork, type OperationOptions } from './operation.js';
export {
  BerthError,
  CommandError,
  ConflictError,
  DownloadError,
  InvalidArgumentError,
  KernelError,
  NotFoundError,
  RegistryError,
  StateError,
  TimeoutError,
  AbortedError,
  UnsafeLayerError,
  BuildError,
  ERROR_CODES,
  type ErrorCode,
  type BerthErrorOptions,
} from './errors.js';
export type {
  ResourceOptions,
  CgroupStats,
  CgroupCpuStats,
  CgroupMemoryStats,
  CgroupNetworkStats,
} from './runtime/cgroups/index.js';
export {
  Network,
  type NetworkConnectOptions,
  type NetworkContainerInfo,
  type NetworkEngineOption,
  type NetworkInfo,
} from './network/network.js';
export { type NetworkCreateOptions, type AttachmentOptions } from './network/options.js';
export {
  PORT_PROTOCOLS,
  parsePortSpec,
  parsePorts,
  type PortBinding,
  type PortProtocol,
  type PublishedPort,
} from './network/ports.js';
export type { PlanInterface } from './runtime/plan-interface.js';
export type { WaitForOptions } from './container/wait-for.js';
export type { ContainerFiles, ContainerFileSource } from './container/fs/files.js';
export type { PublishedUrlOptions } from './container/published.js';
export { SPEC_HASH_LABEL, type ReuseOptions } from './container/reuse.js';
export { ContainerPool, POOL_LABEL, WARMER_LABEL, type PoolOptions, type PoolTakeOptions } from './container/pool.js';
export type { ContainerPoolOptions } from './container/pool-open.js';

// `image.run()` is `Container.run` with the image and its engine: wired here, where both classes
// are known, so that neither module imports the other.
declare module './image/image.js' {
  interface Image {
    /**
     * Creates and starts a container of this image, as `docker run` (shorthand for
     * {@link Container.run} with this image and its engine).
     *
     * @example
     * ```ts
     * await using c = await new Image('busybox').run(['sleep', '30']);
     * ```
     */
    run(command?: string | string[], options?: RunOptions): Promise<Container>;
  }
}

Image.prototype.run = function run(this: Image, command?: string | string[], options: RunOptions = {}) {
  return Container.run(this.ref, command, {
    ...(this.engine === undefined ? {} : { engine: this.engine }),
    ...options,
  });
};

export {
  Snapshot,
  type SnapshotCreateOptions,
  type SnapshotInfo,
  type SnapshotListOptions,
  type SnapshotOptions,
  type SnapshotRemoveOptions,
} from './container/snapshot.js';

/** Options of {@link Snapshot.fork}: those of {@link Container.run}, and its `command`. */
export type SnapshotForkOptions = RunOptions & {
  /** Replaces the snapshot's command (its source's). A string is run as a single argument. */
  command?: string | string[];
};

// `snapshot.fork()` is `Container.run` with the snapshot and its engine: wired here, where both
// classes are known, so that neither module imports the other (container.ts imports snapshot.ts).
declare module './container/snapshot.js' {
  interface Snapshot {
    /**
     * Creates and starts a container from this snapshot (shorthand for {@link Container.run}
     * with this snapshot, its engine and `options.command`): its file system is the snapshot's,
     * its writes its own; nothing is copied, whatever the snapshot's size.
     *
     * @example
     * ```ts
     * await using c = await snap.fork({ command: ['cat', '/data'], name: 'test-1' });
     * ```
     */
    fork(options?: SnapshotForkOptions): Promise<Container>;
  }
}

Snapshot.prototype.fork = function fork(this: Snapshot, options: SnapshotForkOptions = {}) {
  const { command, ...rest } = options ?? {};
  return Container.run(this, command, { ...(this.engine === undefined ? {} : { engine: this.engine }), ...rest });
};
