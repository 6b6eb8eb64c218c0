/**
 * The `CgroupDriver` seam: one object per engine that makes, limits, freezes, measures and removes
 * the cgroup of each container, with one implementation per cgroup version (like crun's manager
 * table): {@link V1Driver} and {@link V2Driver}. {@link createCgroupDriver} picks one from what
 * {@link detectCgroups} finds.
 *
 * Every container gets a cgroup named by its id under one parent, `berth` by default, at the root
 * of each hierarchy: `/sys/fs/cgroup/memory/berth/<id>` (one per v1 controller) or
 * `/sys/fs/cgroup/berth/<id>` (v2). The parent is made on demand and left in place.
 *
 * @module
 */
import type { CgroupLimits } from './resources.js';
import type { CgroupFs } from './cgroup-fs.js';
import type { CgroupLayout } from './detect.js';
import type { DeviceRule } from './devices.js';
import type { DeviceFilterLoader } from './bpf-devices.js';

/** What {@link CgroupDriver.create} made. */
export interface CgroupCreateInfo {
  /**
   * Absolute paths of the `cgroup.procs` files the container's init writes `0` to (joining
   * itself) before it unshares its cgroup namespace and execs: one per v1 hierarchy, one on v2.
   */
  procsFiles: string[];
  /** The container's cgroup directories, one per hierarchy. */
  paths: string[];
}

/**
 * What a container mounts at `/sys/fs/cgroup` to see its own cgroup as the root, inside its cgroup
 * namespace (as runc does for a container with one): on v2 the cgroup2 hierarchy; on v1 each
 * hierarchy the container joins, at `/sys/fs/cgroup/<dir>` with the options that name it, and a
 * symlink per alias (`cpu` → `cpu,cpuacct` where those are co-mounted).
 */
export type CgroupView =
  | {
      /** cgroup v2. */
      version: 2;
    }
  | {
      /** cgroup v1. */
      version: 1;
      /** The hierarchies, one mount each. */
      hierarchies: Array<{ dir: string; options: string; aliases: string[] }>;
    };

/** Options of {@link CgroupDriver.create}. */
export interface CgroupCreateOptions {
  /**
   * The devices the cgroup may use: rules applied in order after denying every device (see
   * {@link cgroupDeviceRules}), by the devices controller on v1, by a BPF device program with the
   * same meaning on v2. Absent: every device is denied. Which devices a container gets is the
   * container service's policy (Docker's default allow-list). An invalid rule is refused with
   * `InvalidArgumentError` before anything is made.
   */
  devices?: readonly DeviceRule[];
  /** Leave device access unrestricted (a privileged container): no rule is applied. Default `false`. */
  allowAllDevices?: boolean;
}

/** CPU figures of a container's cgroup, in nanoseconds since it was made. */
export interface CgroupCpuStats {
  /** CPU time used, user and system. */
  totalNs: number;
  /** CPU time used in user mode. */
  userNs: number;
  /** CPU time used in kernel mode. */
  systemNs: number;
  /** Time the CFS quota held the container back; absent when the kernel does not report it. */
  throttledNs?: number;
}

/** Memory figures of a container's cgroup, in bytes. */
export interface CgroupMemoryStats {
  /** Memory charged to the container now (page cache included). */
  usage: number;
  /** Its limit; the host's total memory when it has none. */
  limit: number;
  /** Page cache (`cache` on v1, `file` on v2); absent when `memory.stat` is unreadable. */
  cache?: number;
  /** Anonymous memory (`rss` on v1, `anon` on v2); absent when `memory.stat` is unreadable. */
  rss?: number;
}

/** Network figures of a container; the cgroup drivers never set them. */
export interface CgroupNetworkStats {
  /** Bytes received. */
  rxBytes: number;
  /** Bytes sent. */
  txBytes: number;
  /** Packets received. */
  rxPackets: number;
  /** Packets sent. */
  txPackets: number;
}

/** One sample of a container's resource use, as the cgroup driver reads it. */
export interface CgroupStats {
  /** CPU time. */
  cpu: CgroupCpuStats;
  /** Memory. */
  memory: CgroupMemoryStats;
  /** Processes and threads. */
  pids: {
    /** Tasks in the cgroup now. */
    current: number;
    /** The pids limit; absent when unlimited. */
    limit?: number;
  };
  /** Block I/O, summed over devices (0 when the kernel does not account it). */
  blkio: {
    /** Bytes read. */
    readBytes: number;
    /** Bytes written. */
    writeBytes: number;
  };
  /** Network traffic: always absent here; it is read from the container's network namespace. */
  network?: CgroupNetworkStats;
}

/**
 * Makes and manages container cgroups. Methods taking an `id` throw `InvalidArgumentError` for an
 * id that is not a plain name (`[A-Za-z0-9][A-Za-z0-9_.-]*`), and a `KernelError` naming the file
 * when the kernel refuses a write.
 */
export interface CgroupDriver {
  /** The cgroup version driven: 1 (v1 or hybrid machines) or 2. */
  readonly version: 1 | 2;
  /**
   * Makes the cgroup(s) of container `id` (and the parent, when missing), applies `limits` and the
   * device rules, and returns the `cgroup.procs` files the init joins. An existing cgroup of that
   * id is reused. On failure, what was made is removed again.
   */
  create(id: string, limits: CgroupLimits, options?: CgroupCreateOptions): Promise<CgroupCreateInfo>;
  /** Changes the limits of an existing cgroup, live; fields absent from `limits` are left as they are. */
  update(id: string, limits: CgroupLimits): Promise<void>;
  /** Freezes every process of the cgroup and resolves once the kernel reports it frozen. */
  freeze(id: string): Promise<void>;
  /** Thaws a frozen cgroup and resolves once the kernel reports it thawed. */
  thaw(id: string): Promise<void>;
  /** Whether the cgroup is frozen now. */
  frozen(id: string): Promise<boolean>;
  /** Reads one sample of the cgroup's resource use. */
  stats(id: string): Promise<CgroupStats>;
  /** Whether the kernel's OOM killer has killed a process of this cgroup. Read it before {@link CgroupDriver.destroy}. */
  oomKilled(id: string): Promise<boolean>;
  /** Pids (as seen from the engine) of every process in the cgroup and its children, sorted. */
  pids(id: string): Promise<number[]>;
  /** Whether the cgroup of `id` exists. */
  exists(id: string): Promise<boolean>;
  /** The directories the cgroup of `id` has (or would have), one per hierarchy. */
  paths(id: string): string[];
  /**
   * Files a single-threaded process writes `0` to, to move itself into the cgroup of `id`: the v1
   * `tasks` files. A thread that moves itself (pid `0`, `tasks` rather than `cgroup.procs`) needs
   * no threadgroup stability, so the kernel skips its global threadgroup lock, whose first writer
   * after a quiet spell waits out an RCU grace period (5–15 ms on a 2-core VM; ~0.03 ms without).
   * Only for a process with one thread (a fresh fork), which then moves whole. Empty on v2: a
   * domain cgroup is joined through `cgroup.procs` only.
   */
  threadJoinFiles(id: string): string[];
  /** How a container sees its own cgroup at `/sys/fs/cgroup` (see {@link CgroupView}); the same for every container. */
  view(): CgroupView;
  /**
   * Kills whatever still runs in the cgroup and removes its directories (children first),
   * retrying briefly while the kernel reports them busy. Missing directories are not an error.
   */
  destroy(id: string): Promise<void>;
  /**
   * SIGKILLs every process in the cgroup, forks racing the kill included (`cgroup.kill` on v2
   * kernels that have it; otherwise frozen, killed, thawed, as runc does); leaves the directories.
   * A cgroup that is gone or empty is not an error.
   */
  killAll(id: string): Promise<void>;
  /**
   * Removes the shared parent cgroup when no container has a cgroup under it (the kernel refuses
   * otherwise, which is not an error). {@link CgroupDriver.destroy} leaves the parent, as Docker
   * leaves its own: making and removing it around every container would double the directories
   * each one costs. The engine calls this when it closes.
   */
  removeParent(): Promise<void>;
}

/** Options shared by {@link V1Driver} and {@link V2Driver}. */
export interface CgroupDriverOptions {
  /** The hierarchies to use. Default: {@link detectCgroups} on this process's mountinfo. */
  layout?: CgroupLayout;
  /** The parent cgroup, relative to each hierarchy's root; may hold `/`. Default `berth`. */
  parent?: string;
  /** File operations. Default: {@link nodeCgroupFs} on the real cgroupfs. */
  fs?: CgroupFs;
  /** How long freeze, thaw and destroy wait for the kernel, in ms. Default 5000. */
  timeoutMs?: number;
  /** How often they look, in ms. Default 10. */
  pollMs?: number;
  /** Sends a signal to a pid (used by destroy on v1 and on v2 kernels without `cgroup.kill`). Default `process.kill`. */
  kill?: (pid: number, signal: 'SIGKILL') => void;
  /**
   * How the v2 driver applies device rules to a cgroup directory. Default: {@link bpfDeviceFilter}
   * (a `BPF_PROG_TYPE_CGROUP_DEVICE` program). Tests on a fake tree pass a fake. Unused on v1.
   */
  deviceFilter?: DeviceFilterLoader;
}
