/**
 * The container init in JavaScript: what a freshly forked child of the zygote does, synchronously
 * and on its only thread, between fork(2) and execve(2). It never returns: it ends in execve or,
 * on failure, writes an {@link InitFailure} to the error pipe and exits.
 *
 * Most containers are started by `berth-init` instead (`monitor/init.c`, spawned by the zygote,
 * see `native-init.ts`), which takes the same steps in the same order, with the same step names
 * in its failures and the same markers on the error pipe. This one runs the few plans
 * `berth-init` cannot carry (see `nativeInitUnsupported`) and every plan when `berth-init` is not
 * available or `BERTH_NATIVE_INIT=0`. Keep the two in step.
 *
 * Order matters and follows runc's standard init:
 *
 * 1. die with the zygote (PDEATHSIG), new session, new mount/UTS/IPC/net/cgroup namespaces
 *    (the PID namespace was made by the parent: this process is already PID 1);
 * 2. make every mount private, mount the overlay root on the host-side mount point;
 * 3. clone the host files to bind (hosts, hostname, resolv.conf …) as detached mounts while
 *    the host paths are still reachable;
 * 4. `pivot_root(".", ".")` and detach the old root: from here every path resolves inside the
 *    container, so a hostile image's symlinks (`/proc -> /`) cannot point mounts at the host;
 * 5. /proc, /sys, /dev and its nodes, the binds, masked and read-only paths;
 * 6. hostname, loopback up;
 * 7. user and groups (looked up in the container's own /etc/passwd and /etc/group),
 *    oom_score_adj, resource limits, a new session keyring, capabilities (none inheritable),
 *    no_new_privs, working directory, stdio, signal dispositions;
 * 8. execve, searching `PATH` from the container's environment.
 *
 * @module
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { dryRunSys, DryRunEnd, sys, useSys } from './init-sys.js';
import * as K from '../kernel/constants.js';
import { BerthError } from '../errors.js';
import { makedev } from '../kernel/fs.js';
import { fcntl } from '../kernel/fd.js';
import { buildPlan, type Plan, type PlanDefaults, type PlanMount, type RuntimeSpec } from './plan.js';
import { resolveUser, resolveUserFrom, parsePasswd, parseGroup } from './user.js';
import { failureOf, report, type InitFds } from './init-report.js';
import {
  applyLimits,
  dropPrivileges,
  execProgram,
  IGNORED_SIGNALS,
  loadSeccomp,
  readExactly,
  reap,
  setUpStdio,
  withHome,
} from './init-process.js';
import { attachUserMount, cloneSource, ensureMountTarget, maskPath, readonlyPath } from './init-mounts.js';

/** Handles on the host's network namespace, opened before the init leaves it. */
export interface HostNet {
  /** `/proc/self/ns/net` of the host. */
  ns: number;
  /** A NETLINK_ROUTE socket bound in the host's network namespace. */
  netlink: number;
}

/**
 * The part of the init that does not depend on the container: new session, namespaces,
 * private mounts, loopback up. A pooled template runs it ahead of time (see `zygote/`).
 */
export function prepareInit(unshareFlags: number): void {
  sys.prctl(K.PR_SET_PDEATHSIG, K.SIGNALS.SIGKILL!);
  sys.setsid();
  // The cgroup namespace is made once the container's cgroup is joined (see runInit).
  sys.unshare(unshareFlags & ~K.CLONE_NEWCGROUP);
  sys.mount(null, '/', null, K.MS_REC | K.MS_PRIVATE, null);
  if (unshareFlags & K.CLONE_NEWNET) sys.setLinkUp('lo');
}

/**
 * A pooled template: prepares namespaces for `unshareFlags`, then blocks until the zygote
 * writes a plan on `ctrlFd` (and closes it), and runs it. Exits quietly when the pipe closes
 * without a plan. Never returns.
 */
export function runTemplate(unshareFlags: number, ctrlFd: number, fds: InitFds): never {
  let hostNet: HostNet | undefined;
  try {
    // Keep only our own descriptors: a copy of another container's pipe end held here would
    // keep that container's output (and exec report) open until this template execs.
    closeOtherFds([ctrlFd, fds.stdout, fds.stderr, fds.error, fds.stdin].filter((fd) => fd >= 0));
    // Kept from the host's network namespace, to wire veth pairs once the plan says which.
    if (unshareFlags & K.CLONE_NEWNET) {
      hostNet = { ns: sys.open('/proc/self/ns/net', K.O_RDONLY | K.O_CLOEXEC), netlink: sys.openRtnetlink() };
    }
    prepareInit(unshareFlags);
    warmUp();
  } catch (e) {
    report(fds.error, failureOf('prepare', e));
  }
  let plan: Plan;
  try {
    const header = readExactly(ctrlFd, 4);
    if (!header) sys.exit(0);
    const body = readExactly(ctrlFd, header.readUInt32LE(0));
    if (!body) sys.exit(0);
    plan = JSON.parse(body.toString('utf8')) as Plan;
  } catch (e) {
    report(fds.error, failureOf('read plan', e));
  }
  return runInit(plan, fds, true, hostNet, ctrlFd);
}

/**
 * Closes every descriptor from 3 up except `keep`. The eventfd libuv wakes its loop with (shared
 * with the zygote this process was forked from) is closed too, but its number is taken again by
 * a close-on-exec /dev/null: V8 still posts tasks (a scavenge once enough was allocated, say) by
 * writing to it, and libuv aborts when that write fails, which in PID 1 of a namespace ends in a
 * SIGSEGV (measured: a copy-up of ~600 entries). The tasks never run here (the loop does not turn
 * again); the writes just succeed.
 */
export function closeOtherFds(keep: number[]): void {
  const wakeups = eventFds().filter((fd) => !keep.includes(fd));
  let from = 3;
  for (const fd of [...keep].sort((a, b) => a - b)) {
    if (fd < from) continue;
    if (fd > from) sys.closeRange(from, fd - 1, 0);
    from = fd + 1;
  }
  sys.closeRange(from, 0xffffffff, 0);
  if (wakeups.length === 0) return;
  const devNull = sys.open('/dev/null', K.O_WRONLY | K.O_CLOEXEC);
  for (const fd of wakeups) {
    if (fd === devNull) continue;
    sys.dup2(devNull, fd);
    fcntl(fd, K.F_SETFD, K.FD_CLOEXEC);
  }
  if (!wakeups.includes(devNull)) sys.close(devNull);
}

/** This process's eventfds from 3 up (the listing's own fd, gone by its readlink, is skipped). */
function eventFds(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd < 3) continue;
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === 'anon_inode:[eventfd]') out.push(fd);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return out;
}

/**
 * Runs the whole init against {@link dryRunSys}: V8 compiles every function it uses and the
 * pages it touches are copied now, not while a container waits. The zygote calls it before it
 * forks templates (they inherit the compiled code) and each template once more while it waits.
 */
export function warmUp(): void {
  const saved = useSys(dryRunSys);
  try {
    for (const args of [['true'], ['/bin/true'], []]) {
      try {
        runInit(
          { ...WARM_PLAN, spec: { ...WARM_PLAN.spec, process: { ...WARM_PLAN.spec.process, args } } },
          { stdin: -1, stdout: 1, stderr: 2, error: 3 },
          true,
        );
      } catch (e) {
        if (!(e instanceof DryRunEnd)) throw e;
      }
    }
    try {
      runExec(
        {
          id: 'warm-up',
          targetPid: 1,
          targetStartTime: 0,
          process: WARM_PLAN.spec.process,
          capabilityMask: '1',
          cgroupProcs: ['/c'],
        },
        { fds: [[100, 0]] },
        { stdin: -1, stdout: 1, stderr: 2, error: 3 },
      );
    } catch (e) {
      if (!(e instanceof DryRunEnd)) throw e;
    }
    resolveUserFrom('x', parsePasswd([['x', 'x', '1', '1', '', '/', '/bin/sh']]), parseGroup([['g', 'x', '2', 'x']]));
  } finally {
    useSys(saved);
  }
}

/**
 * Defaults for the warm-up plan: as many paths and nodes as a container's plan has (Docker's 12
 * masked, 5 read-only and 7 device nodes, see `container/defaults.ts`), so that the warm-up runs
 * each step as often as a container's init does. A dry run: none of them is touched.
 */
const WARM_DEFAULTS: PlanDefaults = {
  maskedPaths: Array.from({ length: 12 }, (_, i) => `/proc/masked-${i}`),
  readonlyPaths: Array.from({ length: 5 }, (_, i) => `/proc/read-only-${i}`),
  devices: Array.from({ length: 7 }, (_, i) => ({ path: `/dev/node-${i}`, major: 1, minor: i, mode: 0o666 })),
};

const WARM_PLAN: Plan = buildPlan(
  {
    id: 'warm-up',
    hostname: 'warm-up',
    domainname: 'example',
    rootfs: { lowerDirs: ['/l'], upperDir: '/u', workDir: '/w', mountPoint: '/m', readOnly: true },
    binds: [{ source: '/s', target: '/etc/hosts', readOnly: true }],
    process: {
      args: ['true'],
      env: ['PATH=/bin'],
      cwd: '/',
      user: 'root',
      noNewPrivileges: true,
      capabilities: ['CAP_CHOWN'],
      init: true,
      rlimits: [{ resource: 7, soft: 1024, hard: -1 }],
      oomScoreAdj: 0,
      seccomp: '0600000000007f7f',
    },
    network: 'new',
    sysctls: { 'net.ipv4.ip_forward': '1' },
    cgroupView: {
      version: 1,
      hierarchies: [{ dir: 'cpu,cpuacct', options: 'cpu,cpuacct', aliases: ['cpu', 'cpuacct'] }],
    },
    mounts: [
      { kind: 'bind', source: '/v', target: '/data', readOnly: true, propagation: 'rslave', copyUp: true, dir: true },
      { kind: 'tmpfs', target: '/run', readOnly: false, data: 'size=1m' },
    ],
  },
  WARM_DEFAULTS,
);

/** What an exec into a running container runs (see {@link runExec}). */
export interface ExecPlan {
  /** Exec id (used in messages only). */
  id: string;
  /** Host pid of the container's PID 1, whose namespaces are joined. */
  targetPid: number;
  /** Its start time (clock ticks since boot), checked before joining. */
  targetStartTime: number;
  /** The process to run, as in a container plan. */
  process: RuntimeSpec['process'];
  /** Capability mask the process keeps, decimal. */
  capabilityMask: string;
  /**
   * Files the (single-threaded) child writes `0` to, to join the container's cgroups: the v1
   * `tasks` files (no global lock, see `CgroupDriver.threadJoinFiles`), else `cgroup.procs`;
   * empty when none.
   */
  cgroupProcs: string[];
}

/** Namespace fds an exec joins, opened by the zygote from `/proc/<pid>/ns/*` before forking. */
export interface ExecNamespaces {
  /** `[fd, CLONE_NEW*]` pairs, joined in order; the mount namespace last. */
  fds: Array<[number, number]>;
}

/**
 * Joins a running container and execs a process in it: its cgroups, IPC, UTS, network, cgroup
 * and mount namespaces (the PID namespace was joined by the parent before forking, so this
 * process is already inside it), its root (setns into a mount namespace moves the root there),
 * its capabilities. Never returns.
 */
export function runExec(plan: ExecPlan, ns: ExecNamespaces, fds: InitFds): never {
  let step = 'prepare';
  try {
    closeOtherFds(
      [fds.stdout, fds.stderr, fds.error, fds.stdin, fds.ctrl ?? -1, ...ns.fds.map(([fd]) => fd)].filter(
        (fd) => fd >= 0,
      ),
    );
    sys.prctl(K.PR_SET_PDEATHSIG, K.SIGNALS.SIGKILL!);
    sys.setsid();
    step = 'cgroups';
    for (const f of plan.cgroupProcs) sys.writeFile(f, '0');
    step = 'setns';
    for (const [fd, type] of ns.fds) {
      sys.setns(fd, type);
      sys.close(fd);
    }
    step = 'user';
    const user = resolveUser(plan.process.user);
    step = 'stdio';
    setUpStdio(plan.process, fds, fds.ctrl ?? -1, user, false);
    applyLimits(plan.process, (s) => (step = s));
    step = 'seccomp';
    loadSeccomp(plan.process, 'before');
    step = 'capabilities';
    dropPrivileges({ capabilityMask: plan.capabilityMask, spec: { process: plan.process } }, user);
    step = 'workdir';
    sys.chdir(plan.process.cwd || '/');
    step = 'seccomp';
    loadSeccomp(plan.process, 'after');
    step = 'exec';
    sys.closeRange(3, 0xffffffff, K.CLOSE_RANGE_CLOEXEC);
    sys.resetSignals(IGNORED_SIGNALS);
    execProgram(plan.process.args, withHome(plan.process.env, user), fds.error);
  } catch (e) {
    report(fds.error, failureOf(step, e));
  }
}

/** Runs the plan in the current (freshly forked) process. Never returns. */
export function runInit(plan: Plan, fds: InitFds, prepared = false, hostNet?: HostNet, ctrlFd = -1): never {
  let step = 'prepare';
  try {
    // Idmapped mounts and the user namespace are made by berth-init only (see native-init.ts).
    if (plan.spec.userns)
      throw new BerthError(
        'UNSUPPORTED',
        'a container with a user namespace (userns) needs berth-init, the native init',
      );
    if (!prepared) {
      if (plan.spec.interfaces?.length)
        hostNet = { ns: sys.open('/proc/self/ns/net', K.O_RDONLY | K.O_CLOEXEC), netlink: sys.openRtnetlink() };
      prepareInit(plan.unshareFlags);
    }
    if (plan.spec.joinNetnsPid) {
      step = 'join network';
      const fd = sys.open(`/proc/${plan.spec.joinNetnsPid}/ns/net`, K.O_RDONLY | K.O_CLOEXEC);
      sys.setns(fd, K.CLONE_NEWNET);
      sys.close(fd);
    }
    if (plan.spec.interfaces?.length) {
      step = 'network interfaces';
      if (!hostNet) throw new BerthError('INTERNAL', 'no handle on the host network namespace');
      sys.setupInterfaces(plan.spec.interfaces, hostNet.ns, hostNet.netlink);
    }
    if (hostNet) {
      sys.close(hostNet.ns);
      sys.close(hostNet.netlink);
    }
    step = 'cgroups';
    // Not a template (no zygote to do it): join the cgroups here.
    if (ctrlFd < 0) for (const f of plan.spec.cgroupProcs ?? []) sys.writeFile(f, '0');
    const tasks = plan.spec.cgroupTasks ?? [];
    step = 'rootfs';
    const root = plan.spec.rootfs;
    sys.mount('overlay', root.mountPoint, 'overlay', 0, plan.rootfsData);
    step = 'bind sources';
    const binds = plan.spec.binds.map((b) => ({
      ...b,
      fd: sys.openTree(K.AT_FDCWD, b.source, K.OPEN_TREE_CLONE | K.OPEN_TREE_CLOEXEC),
      dir: sys.isDirectory(b.source),
    }));
    step = 'mount sources';
    const userMounts = (plan.spec.mounts ?? []).map((m) => ({ m, fd: m.kind === 'bind' ? cloneSource(m) : -1 }));
    if (tasks.length) {
      // v1: this process has one thread, which moves itself through `tasks` without the
      // kernel's global lock; the host's cgroup files must still be reachable (before the pivot).
      step = 'cgroups';
      if (ctrlFd >= 0) awaitCgroupAck(ctrlFd, plan);
      for (const f of tasks) sys.writeFile(f, '0');
    }
    step = 'pivot_root';
    sys.chdir(root.mountPoint);
    sys.pivotRoot('.', '.');
    sys.umount2('.', K.MNT_DETACH);
    sys.chdir('/');
    sys.umask(0);
    const makeMounts = (list: PlanMount[]) => {
      for (const m of list) {
        step = `mount ${m.target}`;
        sys.mkdirAll(m.target, 0o755);
        sys.mount(m.source, m.target, m.fstype, m.flags, m.data);
      }
    };
    makeMounts(plan.mounts);
    step = 'devices';
    for (const d of plan.devices) sys.mknod(d.path, K.S_IFCHR | d.mode, makedev(d.major, d.minor));
    for (const [target, path] of plan.symlinks) sys.symlink(target, path);
    for (const b of binds) {
      step = `bind ${b.target}`;
      ensureMountTarget(b.target, b.dir);
      sys.moveMount(b.fd, '', K.AT_FDCWD, b.target, K.MOVE_MOUNT_F_EMPTY_PATH | K.MOVE_MOUNT_T_SYMLINKS);
      sys.close(b.fd);
      if (b.readOnly) sys.mount(null, b.target, null, K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY, null);
    }
    for (const { m, fd } of userMounts) {
      step = `mount ${m.target}`;
      attachUserMount(m, fd);
    }
    for (const { path, value } of plan.sysctls) {
      // Through the container's /proc/sys, in its namespaces, before it is made read-only.
      step = `sysctl ${path}`;
      sys.writeFile(path, value);
    }
    step = 'masked paths';
    for (const p of plan.maskedPaths) maskPath(p);
    for (const p of plan.readonlyPaths) readonlyPath(p);
    sys.umask(0o022);
    step = 'cgroups';
    // v2: the zygote moves this process into its cgroups while the mounts above are made.
    if (ctrlFd >= 0 && !tasks.length) awaitCgroupAck(ctrlFd, plan);
    if (plan.unshareFlags & K.CLONE_NEWCGROUP) sys.unshare(K.CLONE_NEWCGROUP);
    makeMounts(plan.cgroupMounts);
    step = 'hostname';
    sys.sethostname(plan.spec.hostname);
    if (plan.spec.domainname) sys.setdomainname(plan.spec.domainname);
    step = 'user';
    const user = resolveUser(plan.spec.process.user);
    step = 'stdio';
    setUpStdio(plan.spec.process, fds, ctrlFd, user, true);
    step = 'workdir';
    const cwd = plan.spec.process.cwd || '/';
    if (!sys.exists(cwd)) sys.mkdirAll(cwd, 0o755);
    if (plan.spec.rootfs.readOnly) {
      step = 'read-only root';
      sys.mount(null, '/', null, K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY, null);
    }
    applyLimits(plan.spec.process, (s) => (step = s));
    step = 'seccomp';
    loadSeccomp(plan.spec.process, 'before');
    step = 'capabilities';
    dropPrivileges(plan, user);
    step = 'workdir';
    sys.chdir(cwd);
    step = 'seccomp';
    loadSeccomp(plan.spec.process, 'after');
    step = 'exec';
    sys.closeRange(3, 0xffffffff, K.CLOSE_RANGE_CLOEXEC);
    sys.resetSignals(IGNORED_SIGNALS);
    if (plan.spec.process.init) {
      step = 'init';
      // Blocked before the fork, as berth-init does: the SIGCHLD of a program that ends at once
      // stays pending for the reaper's sigwaitinfo (unblocked, it was lost, and the reaper
      // waited forever).
      sys.blockAllSignals();
      const main = sys.fork();
      if (main !== 0) reap(main, fds.error);
      // The program is the terminal's foreground job, as tini makes it: Ctrl-C reaches it
      // once, not also this reaper (which would forward it a second time).
      if (plan.spec.process.terminal) sys.becomeForegroundGroup(0);
      sys.resetSignals(IGNORED_SIGNALS);
    }
    execProgram(plan.spec.process.args, withHome(plan.spec.process.env, user), fds.error);
  } catch (e) {
    report(fds.error, failureOf(step, e));
  }
}

/**
 * Waits for the zygote's one byte on the control pipe that lets this process into its cgroups
 * (made by the engine meanwhile; on v2 also joined by the zygote for it); keeps the pipe open
 * for a terminal's handover.
 */
function awaitCgroupAck(ctrlFd: number, plan: Plan): void {
  const ack = readExactly(ctrlFd, 1);
  if (!plan.spec.process.terminal) sys.close(ctrlFd);
  if (!ack || ack[0] !== 0x31) throw new BerthError('KERNEL', 'the container could not be moved into its cgroups');
}
