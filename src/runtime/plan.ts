/**
 * The runtime plan: plain data, close to the OCI runtime spec, that says exactly what the
 * container init does. {@link buildPlan} is pure (no I/O), so plans are compared by value in
 * unit tests; only `init.ts` carries one out.
 *
 * @module
 */
import {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWUTS,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_REMOUNT,
  MS_STRICTATIME,
} from '../kernel/constants.js';
import { BerthError } from '../errors.js';
import { boundingSet, CAPABILITIES, capabilityMask } from './capabilities.js';
import type { PlanInterface } from './plan-interface.js';
import type { CgroupView } from './cgroups/driver.js';

/** What the runtime needs to know to start a container: no Docker words, only mechanics. */
export interface RuntimeSpec {
  /** Container id (used in messages only). */
  id: string;
  /** Hostname set in the container's UTS namespace. */
  hostname: string;
  /** NIS domain name, when set. */
  domainname?: string;
  /** The root file system: an overlay of read-only lower dirs (topmost first) and a writable upper dir. */
  rootfs: {
    /** Unpacked layer directories, topmost first. */
    lowerDirs: string[];
    /** The container's writable layer. */
    upperDir: string;
    /** overlayfs work dir, on the same file system as upperDir. */
    workDir: string;
    /** An empty host directory the overlay is mounted on (inside the container's mount namespace only). */
    mountPoint: string;
    /** Remount the root read-only after setup. */
    readOnly: boolean;
  };
  /** Host files or directories bind-mounted into the container (e.g. /etc/hosts). */
  binds: Array<{ source: string; target: string; readOnly: boolean }>;
  /** The process to execute. */
  process: {
    /** argv; `args[0]` is looked up in `PATH` from `env` when it has no slash. */
    args: string[];
    /** The complete environment, `K=V`. */
    env: string[];
    /** Working directory inside the container; created when missing. */
    cwd: string;
    /** `user[:group]`, names or numeric ids, resolved inside the container's /etc/passwd and /etc/group. Empty: root. */
    user: string;
    /** Set no_new_privs before execve. */
    noNewPrivileges: boolean;
    /** Capability names (`CAP_CHOWN`, …) the process keeps. */
    capabilities: string[];
    /** Run a small init as PID 1 that reaps zombies and forwards signals to the program (Docker's `--init`). */
    init?: boolean;
    /**
     * Give the process a pseudo-terminal of this size as stdin, stdout and stderr (and its
     * controlling terminal), made on the container's own devpts instance.
     */
    terminal?: { cols: number; rows: number };
    /** Connect stdin to a pipe the runtime keeps open (else /dev/null). Ignored with a terminal. */
    stdin?: boolean;
    /** Resource limits set before the user changes (its processes inherit them); -1: unlimited. */
    rlimits?: RuntimeRlimit[];
    /** Written to `/proc/self/oom_score_adj` (-1000…1000) before the user changes. */
    oomScoreAdj?: number;
    /**
     * The seccomp filter the process runs under, in hex: a classic BPF program (`struct
     * sock_filter[]`) as `seccompFilterHex` compiles it. Absent: none (unconfined). Installed
     * after the capabilities are dropped with no_new_privs, right before that without (the
     * kernel then wants CAP_SYS_ADMIN), as runc does.
     */
    seccomp?: string;
  };
  /** Kernel parameters (`net.ipv4.ip_forward`: `'1'`) written in the container's namespaces, through its /proc/sys. */
  sysctls?: Record<string, string>;
  /** The container's own cgroup, mounted at /sys/fs/cgroup inside its cgroup namespace; none when absent. */
  cgroupView?: CgroupView;
  /** Network namespace: a new one (loopback, plus `interfaces`), the caller's, or another process's (`joinNetnsPid`). */
  network: 'new' | 'host' | 'join';
  /** Interfaces to create in a new network namespace (veth pairs into bridges). */
  interfaces?: PlanInterface[];
  /** With `network: 'join'`: the pid whose network namespace is joined. */
  joinNetnsPid?: number;
  /** The container's own mounts (volumes, binds, tmpfs), made after the standard ones, in order. */
  mounts?: UserMount[];
  /**
   * Run the process in a user namespace of its own with these mappings (berth-init only): the
   * root file system, the `binds` and the mounts marked `idmap` are idmapped mounts of it.
   * Both maps must map container id 0.
   */
  userns?: { uidMap: IdMapping[]; gidMap: IdMapping[] };
  /**
   * `cgroup.procs` files that receive the init before it makes its cgroup namespace: the zygote
   * writes the init's pid to them while the init makes its mounts (the init writes `0` itself when
   * it is not a pooled template).
   */
  cgroupProcs?: string[];
  /**
   * v1 `tasks` files the init writes `0` to itself, first thing once it has its plan: its only
   * thread moves without the kernel's global lock (see `CgroupDriver.threadJoinFiles`).
   */
  cgroupTasks?: string[];
}

/** A resource limit of the process (setrlimit(2)). */
export interface RuntimeRlimit {
  /** `RLIMIT_*` number. */
  resource: number;
  /** Soft limit; -1: unlimited. */
  soft: number;
  /** Hard limit; -1: unlimited. */
  hard: number;
}

/** One of the container's own mounts, as the init makes it. */
export type UserMount =
  | {
      /** A host directory or file bound into the container (volumes are binds of their directory). */
      kind: 'bind';
      /** Host path. */
      source: string;
      /** Path in the container (resolved inside the container's root). */
      target: string;
      /** Read-only (the whole bound tree). */
      readOnly: boolean;
      /** Propagation inside the container: private, rprivate, shared, rshared, slave, rslave. */
      propagation: string;
      /** Copy the image's content at the target into the (empty) source first. */
      copyUp: boolean;
      /** The source is a directory (else a file). */
      dir: boolean;
      /** With `userns`: mount it idmapped (a volume), so that it keeps the ids the container sees. */
      idmap?: boolean;
    }
  | {
      /** A fresh tmpfs. */
      kind: 'tmpfs';
      /** Path in the container. */
      target: string;
      /** Read-only. */
      readOnly: boolean;
      /** tmpfs options (size, mode), or null. */
      data: string | null;
    };

/** One range of a user namespace's id map: `size` ids from `containerId` inside are `hostId`… outside. */
export interface IdMapping {
  /** First id inside the container. */
  containerId: number;
  /** First id on the host. */
  hostId: number;
  /** How many ids. */
  size: number;
}

/** The host id of container id `id` under `map`; undefined when it is not mapped. */
export function hostId(map: readonly IdMapping[], id: number): number | undefined {
  const m = map.find((r) => id >= r.containerId && id - r.containerId < r.size);
  return m ? m.hostId + id - m.containerId : undefined;
}

/** A file-system mount performed inside the new root (after pivot_root). */
export interface PlanMount {
  /** mount(2) source; null for none. */
  source: string | null;
  /** Absolute path inside the container. */
  target: string;
  /** File system type. */
  fstype: string;
  /** mount(2) flags. */
  flags: number;
  /** mount(2) data (options string); null for none. */
  data: string | null;
}

/** A device node created in the container's /dev. */
export interface PlanDevice {
  /** Absolute path inside the container. */
  path: string;
  /** Major number. */
  major: number;
  /** Minor number. */
  minor: number;
  /** Permission bits. */
  mode: number;
}

/** What the init executes, step by step. Serializable (JSON) as is. */
export interface Plan {
  /** The spec the plan was built from. */
  spec: RuntimeSpec;
  /** unshare(2) flags applied by the init (the PID namespace is made by its parent). */
  unshareFlags: number;
  /** overlayfs mount data for the root. */
  rootfsData: string;
  /** Mounts made after pivot_root, in order. */
  mounts: PlanMount[];
  /** Device nodes made in /dev. */
  devices: PlanDevice[];
  /** Symlinks `[target, path]` made after the mounts. */
  symlinks: Array<[string, string]>;
  /** Paths hidden from the container (/dev/null bind on files, empty read-only tmpfs on dirs). */
  maskedPaths: string[];
  /** Paths remounted read-only. */
  readonlyPaths: string[];
  /** Capability mask kept by the process, as a decimal string (JSON has no bigint). */
  capabilityMask: string;
  /** Sysctls written (in order) after the mounts, before /proc/sys is made read-only: a /proc/sys path and its value. */
  sysctls: Array<{ path: string; value: string }>;
  /** Mounts made once the cgroup namespace exists, in order (the container's own cgroup at /sys/fs/cgroup). */
  cgroupMounts: PlanMount[];
}

/**
 * What the caller decides for every container it starts, passed to {@link buildPlan}: the
 * runtime holds no such list (Docker's are the container service's, `container/defaults.ts`).
 */
export interface PlanDefaults {
  /** Paths hidden from the container (see {@link Plan.maskedPaths}). */
  maskedPaths: readonly string[];
  /** Paths remounted read-only (see {@link Plan.readonlyPaths}). */
  readonlyPaths: readonly string[];
  /** Device nodes made in /dev (see {@link Plan.devices}). */
  devices: readonly PlanDevice[];
}

const NOSUID_NODEV_NOEXEC = MS_NOSUID | MS_NODEV | MS_NOEXEC;

/** Overlay mount data for a root file system (lowerdir topmost first). */
export function overlayData(rootfs: RuntimeSpec['rootfs']): string {
  for (const d of [...rootfs.lowerDirs, rootfs.upperDir, rootfs.workDir]) {
    if (/[,:\\]/.test(d))
      throw new BerthError('INVALID_ARGUMENT', `overlay path may not contain ',', ':' or '\\': ${d}`);
  }
  return `lowerdir=${rootfs.lowerDirs.join(':')},upperdir=${rootfs.upperDir},workdir=${rootfs.workDir}`;
}

/** The unshare flags of a container with its own network (the common case, pooled by the zygote). */
export const DEFAULT_UNSHARE_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_NEWNET;

/** Builds the plan for `spec` with `defaults`. Pure: the same spec and defaults always give the same plan. */
export function buildPlan(spec: RuntimeSpec, defaults: PlanDefaults): Plan {
  const unshareFlags = spec.network === 'new' ? DEFAULT_UNSHARE_FLAGS : DEFAULT_UNSHARE_FLAGS & ~CLONE_NEWNET;
  const mounts: PlanMount[] = [
    { source: 'proc', target: '/proc', fstype: 'proc', flags: NOSUID_NODEV_NOEXEC, data: null },
    { source: 'sysfs', target: '/sys', fstype: 'sysfs', flags: NOSUID_NODEV_NOEXEC | MS_RDONLY, data: null },
    ...(spec.cgroupView?.version === 1 ? [CGROUP_V1_TMPFS] : []),
    {
      source: 'tmpfs',
      target: '/dev',
      fstype: 'tmpfs',
      flags: MS_NOSUID | MS_STRICTATIME,
      data: 'mode=755,size=65536k',
    },
    // gid= is read in the mounter's (the host's) user namespace: the container's tty group there.
    {
      source: 'devpts',
      target: '/dev/pts',
      fstype: 'devpts',
      flags: MS_NOSUID | MS_NOEXEC,
      data: `newinstance,ptmxmode=0666,mode=0620,gid=${spec.userns ? (hostId(spec.userns.gidMap, 5) ?? 0) : 5}`,
    },
    { source: 'shm', target: '/dev/shm', fstype: 'tmpfs', flags: NOSUID_NODEV_NOEXEC, data: 'mode=1777,size=65536k' },
    { source: 'mqueue', target: '/dev/mqueue', fstype: 'mqueue', flags: NOSUID_NODEV_NOEXEC, data: null },
  ];
  const view = unshareFlags & CLONE_NEWCGROUP ? spec.cgroupView : undefined;
  return {
    spec,
    unshareFlags,
    rootfsData: overlayData(spec.rootfs),
    mounts,
    devices: [...defaults.devices],
    symlinks: [
      ['pts/ptmx', '/dev/ptmx'],
      ['/proc/self/fd', '/dev/fd'],
      ['/proc/self/fd/0', '/dev/stdin'],
      ['/proc/self/fd/1', '/dev/stdout'],
      ['/proc/self/fd/2', '/dev/stderr'],
      ...(view?.version === 1
        ? view.hierarchies.flatMap((h) => h.aliases.map((a): [string, string] => [h.dir, `/sys/fs/cgroup/${a}`]))
        : []),
    ],
    maskedPaths: [...defaults.maskedPaths],
    readonlyPaths: [...defaults.readonlyPaths],
    capabilityMask: heldCapabilityMask(spec.process.capabilities).toString(),
    sysctls: Object.entries(spec.sysctls ?? {}).map(([key, value]) => ({ path: sysctlPath(key), value })),
    cgroupMounts: view ? cgroupViewMounts(view) : [],
  };
}

/** The read-only /sys/fs/cgroup of cgroup v1, where each hierarchy is mounted (made writable until they are, see {@link cgroupViewMounts}). */
const CGROUP_V1_TMPFS: PlanMount = {
  source: 'tmpfs',
  target: '/sys/fs/cgroup',
  fstype: 'tmpfs',
  flags: NOSUID_NODEV_NOEXEC,
  data: 'mode=755',
};

/**
 * The mounts that show a container its own cgroup at /sys/fs/cgroup, read-only, made in its
 * cgroup namespace (where the container's cgroup is each hierarchy's root): the cgroup2 hierarchy,
 * or each v1 hierarchy on the tmpfs the plan's mounts put there, which is then made read-only.
 */
function cgroupViewMounts(view: CgroupView): PlanMount[] {
  const ro = NOSUID_NODEV_NOEXEC | MS_RDONLY;
  if (view.version === 2)
    return [{ source: 'cgroup', target: '/sys/fs/cgroup', fstype: 'cgroup2', flags: ro, data: null }];
  return [
    ...view.hierarchies.map((h) => {
      if (!/^[^/]+$/.test(h.dir) || h.dir === '.' || h.dir === '..')
        throw new BerthError('INTERNAL', `bad cgroup hierarchy directory: ${h.dir}`);
      return { source: 'cgroup', target: `/sys/fs/cgroup/${h.dir}`, fstype: 'cgroup', flags: ro, data: h.options };
    }),
    // The type is ignored by a remount.
    { source: null, target: '/sys/fs/cgroup', fstype: 'tmpfs', flags: MS_BIND | MS_REMOUNT | ro, data: null },
  ];
}

/**
 * The /proc/sys path of a sysctl: `net.ipv4.ip_forward` or `net/ipv4/ip_forward` (the form that
 * can name an interface with a dot, `net/ipv4/conf/eth0.100/forwarding`). Throws on a key that
 * could leave /proc/sys (an empty, `.` or `..` part).
 */
export function sysctlPath(key: string): string {
  const parts = key.includes('/') ? key.split('/') : key.split('.');
  if (parts.some((p) => p === '' || p === '.' || p === '..'))
    throw new BerthError('INVALID_ARGUMENT', `not a sysctl name: ${key}`);
  return `/proc/sys/${parts.join('/')}`;
}

/** The mask of `names`; refuses one outside this process's bounding set, which no init could give. */
function heldCapabilityMask(names: readonly string[]): bigint {
  const mask = capabilityMask(names);
  const missing = names.filter((n) => !((boundingSet() >> BigInt(CAPABILITIES[n] ?? 0)) & 1n));
  if (missing.length > 0) {
    throw new BerthError(
      'INVALID_ARGUMENT',
      `${missing.join(', ')} cannot be given: this engine's process does not hold ${missing.length > 1 ? 'them' : 'it'} (not in its capability bounding set)`,
    );
  }
  return mask;
}
