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
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { linuxInitSys, dryRunSys, DryRunEnd, type InitSys } from './init-sys.js';
import * as K from '../kernel/constants.js';
import { makedev } from '../kernel/fs.js';
import { fcntl } from '../kernel/fd.js';
import { ignoredSignals } from '../kernel/signals.js';
import { KernelError } from '../errors.js';
import { buildPlan, type Plan, type PlanMount, type RuntimeSpec, type UserMount } from './plan.js';
import { MOUNT_ATTR_RDONLY } from '../kernel/mount.js';
import { resolveUser, resolveUserFrom, parsePasswd, parseGroup, type ResolvedUser } from './user.js';

/** Handles on the host's network namespace, opened before the init leaves it. */
export interface HostNet {
  /** `/proc/self/ns/net` of the host. */
  ns: number;
  /** A NETLINK_ROUTE socket bound in the host's network namespace. */
  netlink: number;
}

/** The file descriptors the init wires up, as numbers in the child. */
export interface InitFds {
  /** Becomes fd 0 (-1: /dev/null inside the container). */
  stdin: number;
  /** Becomes fd 1. */
  stdout: number;
  /** Becomes fd 2. */
  stderr: number;
  /** Close-on-exec pipe: stays empty when execve succeeds, carries an {@link InitFailure} otherwise. */
  error: number;
  /**
   * Read end of the control pipe from the zygote (-1 or absent: none). A process with a
   * terminal waits on it until the zygote has taken the terminal's master (see {@link TERMINAL_MARKER}).
   */
  ctrl?: number;
}

/**
 * Written on the error pipe right before execve. The pipe then closes on exec: a marker alone
 * means the program runs; the marker and a failure mean execve failed; nothing at all means the
 * init died before it got there.
 */
export const EXEC_MARKER = '\u0001';

/**
 * Written on the error pipe by a process that made its terminal: the marker, the master's fd
 * number in that process, and a newline. The zygote then copies the master with
 * `pidfd_getfd(2)` and writes one byte on the control pipe; the process closes its own copy
 * and goes on. The master is made inside the container (on its devpts instance, so the
 * program's terminal is `/dev/pts/N` there) but held outside it.
 */
export const TERMINAL_MARKER = '\u0002';

/** Why the init could not start the process; written as JSON on the error pipe. */
export interface InitFailure {
  /** The step that failed, e.g. `mount /proc`. */
  step: string;
  /** What went wrong. */
  message: string;
  /** `command` when the program could not be executed; `user` for an unknown user; else `kernel` or `other`. */
  kind: 'command' | 'user' | 'kernel' | 'other';
  /** The failing syscall, for kernel errors. */
  syscall?: string;
  /** The errno name, for kernel errors. */
  errnoCode?: string;
  /** The exit code Docker reports for this failure (127 not found, 126 not executable). */
  exitCode: number;
}

/** Signals this process ignores (Node ignores SIGPIPE): reset before execve, or the program inherits them. */
const IGNORED_SIGNALS = ignoredSignals();

/** The calls the init makes: the real ones, or {@link dryRunSys} during a warm-up. */
let sys: InitSys = linuxInitSys;

const CAP_LAST = (() => {
  try {
    return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'latin1').trim());
  } catch {
    return 40;
  }
})();

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

/** Reads exactly `n` bytes (blocking); undefined at end of file. */
function readExactly(fd: number, n: number): Buffer | undefined {
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  while (off < n) {
    const got = sys.read(fd, out.subarray(off));
    if (got === 0) return undefined;
    off += got;
  }
  return out;
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
  const saved = sys;
  sys = dryRunSys;
  try {
    for (const args of [['true'], ['/bin/true'], []]) {
      try {
        runInit({ ...WARM_PLAN, spec: { ...WARM_PLAN.spec, process: { ...WARM_PLAN.spec.process, args } } }, { stdin: -1, stdout: 1, stderr: 2, error: 3 }, true);
      } catch (e) {
        if (!(e instanceof DryRunEnd)) throw e;
      }
    }
    try {
      runExec({ id: 'warm-up', targetPid: 1, targetStartTime: 0, process: WARM_PLAN.spec.process, capabilityMask: '1', cgroupProcs: ['/c'] }, { fds: [[100, 0]] }, { stdin: -1, stdout: 1, stderr: 2, error: 3 });
    } catch (e) {
      if (!(e instanceof DryRunEnd)) throw e;
    }
    resolveUserFrom('x', parsePasswd([['x', 'x', '1', '1', '', '/', '/bin/sh']]), parseGroup([['g', 'x', '2', 'x']]));
  } finally {
    sys = saved;
  }
}

const WARM_PLAN: Plan = buildPlan({
  id: 'warm-up', hostname: 'warm-up', domainname: 'example',
  rootfs: { lowerDirs: ['/l'], upperDir: '/u', workDir: '/w', mountPoint: '/m', readOnly: true },
  binds: [{ source: '/s', target: '/etc/hosts', readOnly: true }],
  process: {
    args: ['true'], env: ['PATH=/bin'], cwd: '/', user: 'root', noNewPrivileges: true, capabilities: ['CAP_CHOWN'], init: true,
    rlimits: [{ resource: 7, soft: 1024, hard: -1 }], oomScoreAdj: 0, seccomp: '0600000000007f7f',
  },
  network: 'new',
  sysctls: { 'net.ipv4.ip_forward': '1' },
  cgroupView: { version: 1, hierarchies: [{ dir: 'cpu,cpuacct', options: 'cpu,cpuacct', aliases: ['cpu', 'cpuacct'] }] },
  mounts: [
    { kind: 'bind', source: '/v', target: '/data', readOnly: true, propagation: 'rslave', copyUp: true, dir: true },
    { kind: 'tmpfs', target: '/run', readOnly: false, data: 'size=1m' },
  ],
});

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
    closeOtherFds([fds.stdout, fds.stderr, fds.error, fds.stdin, fds.ctrl ?? -1, ...ns.fds.map(([fd]) => fd)].filter((fd) => fd >= 0));
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
    if (plan.spec.userns) throw new Error('a container with a user namespace (userns) needs berth-init, the native init');
    if (!prepared) {
      if (plan.spec.interfaces?.length) hostNet = { ns: sys.open('/proc/self/ns/net', K.O_RDONLY | K.O_CLOEXEC), netlink: sys.openRtnetlink() };
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
      if (!hostNet) throw new Error('no handle on the host network namespace');
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
  if (!ack || ack[0] !== 0x31) throw new Error('the container could not be moved into its cgroups');
}

/**
 * Wires fds 0–2: a new terminal (see {@link TERMINAL_MARKER}), or the given pipes with stdin
 * from `fds.stdin` or /dev/null. `console`: also bind the terminal onto /dev/console.
 */
function setUpStdio(proc: Plan['spec']['process'], fds: InitFds, ctrlFd: number, user: ResolvedUser, console: boolean): void {
  if (!proc.terminal) {
    sys.dup2(fds.stdin >= 0 ? fds.stdin : sys.open('/dev/null', K.O_RDONLY | K.O_CLOEXEC), 0);
    sys.dup2(fds.stdout, 1);
    sys.dup2(fds.stderr, 2);
    return;
  }
  if (ctrlFd < 0) throw new Error('a terminal needs a control pipe');
  const pty = sys.openPty({ ptmx: '/dev/pts/ptmx' });
  // The program's own terminal, as a login would make it: owned by its user.
  sys.fchown(pty.slave, user.uid, 0xffffffff); // gid -1: unchanged (tty)
  sys.setWindowSize(pty.slave, proc.terminal);
  if (console) sys.mount(`/dev/pts/${pty.index}`, '/dev/console', null, K.MS_BIND, null);
  for (const fd of [0, 1, 2]) sys.dup2(pty.slave, fd);
  sys.close(pty.slave);
  // This process leads its session (setsid at the start): the terminal becomes its controlling one.
  sys.setControllingTerminal(0);
  sys.write(fds.error, `${TERMINAL_MARKER}${pty.master}\n`);
  const ack = readExactly(ctrlFd, 1);
  sys.close(ctrlFd);
  sys.close(pty.master);
  if (!ack) throw new Error('the runtime did not take the terminal');
}

/**
 * PID 1 with `init: true`: forwards every signal it gets to the program, reaps every child
 * (orphans are reparented to it), and exits with the program's status (128 + n for a signal),
 * as tini does. Never returns.
 */
function reap(main: number, errorFd: number): never {
  // The program reports its own exec; holding the pipe here would hide that it closed.
  sys.close(errorFd);
  sys.blockAllSignals();
  for (;;) {
    const { signal } = sys.sigwaitinfo();
    if (signal !== K.SIGNALS.SIGCHLD) {
      try {
        sys.kill(main, signal);
      } catch {
        // The program is gone; its SIGCHLD is on the way.
      }
      continue;
    }
    for (;;) {
      let r;
      try {
        r = sys.waitpid(-1, K.WNOHANG);
      } catch {
        sys.exit(0);
      }
      if (r.pid <= 0) break;
      if (r.pid === main) {
        const sig = r.status & 0x7f;
        sys.exit(sig ? 128 + sig : (r.status >> 8) & 0xff);
      }
    }
  }
}

const PROPAGATION: Record<string, number> = {
  private: K.MS_PRIVATE, rprivate: K.MS_PRIVATE | K.MS_REC, shared: K.MS_SHARED, rshared: K.MS_SHARED | K.MS_REC,
  slave: K.MS_SLAVE, rslave: K.MS_SLAVE | K.MS_REC,
};

/** Clones a bind source (recursively) as a detached mount, read-only when asked, before the pivot. */
function cloneSource(m: Extract<UserMount, { kind: 'bind' }>): number {
  const fd = sys.openTree(K.AT_FDCWD, m.source, K.OPEN_TREE_CLONE | K.OPEN_TREE_CLOEXEC | K.AT_RECURSIVE);
  // A volume to fill is made read-only once filled (attachUserMount).
  if (m.readOnly && !m.copyUp) sys.mountSetattr(fd, '', K.AT_EMPTY_PATH | K.AT_RECURSIVE, MOUNT_ATTR_RDONLY);
  return fd;
}

/** Attaches one of the container's own mounts at its target, inside the new root. */
function attachUserMount(m: UserMount, fd: number): void {
  if (m.kind === 'tmpfs') {
    sys.mkdirAll(m.target, 0o755);
    sys.mount('tmpfs', m.target, 'tmpfs', K.MS_NOSUID | K.MS_NODEV | (m.readOnly ? K.MS_RDONLY : 0), m.data);
    return;
  }
  ensureMountTarget(m.target, m.dir);
  // The image's content under the target, kept reachable through an fd once the volume covers it.
  const below = m.copyUp ? sys.open(m.target, K.O_RDONLY | K.O_DIRECTORY | K.O_CLOEXEC) : -1;
  // Inside the new root a symlinked target resolves inside the container, as runc's securejoin.
  sys.moveMount(fd, '', K.AT_FDCWD, m.target, K.MOVE_MOUNT_F_EMPTY_PATH | K.MOVE_MOUNT_T_SYMLINKS);
  sys.close(fd);
  if (below >= 0) {
    sys.copyUp(`/proc/self/fd/${below}`, m.target);
    sys.close(below);
    if (m.readOnly) {
      const top = sys.open(m.target, K.O_RDONLY | K.O_DIRECTORY | K.O_CLOEXEC);
      sys.mountSetattr(top, '', K.AT_EMPTY_PATH | K.AT_RECURSIVE, MOUNT_ATTR_RDONLY);
      sys.close(top);
    }
  }
  const prop = PROPAGATION[m.propagation];
  if (prop !== undefined && m.propagation !== 'rprivate') sys.mount(null, m.target, null, prop, null);
}

function failureOf(step: string, e: unknown): InitFailure {
  if (e && typeof e === 'object' && 'initFailure' in e) return (e as { initFailure: InitFailure }).initFailure;
  if (e instanceof KernelError) {
    return { step, message: `${step}: ${e.message}`, kind: 'kernel', syscall: e.syscall, errnoCode: e.errnoCode, exitCode: 1 };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { step, message: step === 'user' ? message : `${step}: ${message}`, kind: step === 'user' ? 'user' : 'other', exitCode: 1 };
}

function report(fd: number, failure: InitFailure): never {
  try {
    sys.write(fd, JSON.stringify(failure));
  } finally {
    sys.exit(failure.exitCode === 0 ? 1 : failure.exitCode);
  }
}

/** Creates a missing mount target: a directory, or an empty file for file binds. */
function ensureMountTarget(target: string, dir: boolean): void {
  if (sys.exists(target)) return;
  const parent = target.slice(0, target.lastIndexOf('/')) || '/';
  sys.mkdirAll(parent, 0o755);
  if (dir) sys.mkdir(target, 0o755, true);
  else sys.close(sys.open(target, K.O_WRONLY | K.O_CREAT | K.O_CLOEXEC, 0o644));
}

function maskPath(path: string): void {
  if (!sys.exists(path)) return;
  // Decide by type up front: a failed mount would cost an exception (a stack trace) here.
  if (sys.isDirectory(path)) sys.mount('tmpfs', path, 'tmpfs', K.MS_RDONLY, 'size=0');
  else sys.mount('/dev/null', path, null, K.MS_BIND, null);
}

function readonlyPath(path: string): void {
  if (!sys.exists(path)) return;
  sys.mount(path, path, null, K.MS_BIND | K.MS_REC, null);
  sys.mount(null, path, null, K.MS_BIND | K.MS_REMOUNT | K.MS_RDONLY | K.MS_NOSUID | K.MS_NODEV | K.MS_NOEXEC, null);
}

/**
 * oom_score_adj and the resource limits of the process (its children inherit both), before the
 * user changes, as runc sets them (RLIMIT_NPROC counts at setuid); oom_score_adj first, as a
 * RLIMIT_NOFILE of 0 would keep its file from opening. Then a new, empty session keyring, as runc
 * gives each container: the one inherited from the zygote is the engine's, with its keys.
 * `setStep` names the step under way (for a failure).
 */
function applyLimits(proc: RuntimeSpec['process'], setStep: (step: string) => void): void {
  if (proc.oomScoreAdj !== undefined) {
    setStep('oom_score_adj');
    sys.writeFile('/proc/self/oom_score_adj', String(proc.oomScoreAdj));
  }
  setStep('rlimits');
  const value = (v: number) => (v < 0 ? K.RLIM_INFINITY : BigInt(v));
  for (const r of proc.rlimits ?? []) sys.setrlimit(r.resource, { soft: value(r.soft), hard: value(r.hard) });
  setStep('keyring');
  try {
    sys.joinSessionKeyring();
  } catch (e) {
    // A kernel without keys: there is no keyring to reach.
    if (!(e instanceof KernelError && e.errnoCode === 'ENOSYS')) throw e;
  }
}

function dropPrivileges(plan: Pick<Plan, 'capabilityMask'> & { spec: { process: { noNewPrivileges: boolean } } }, user: ResolvedUser): void {
  const mask = BigInt(plan.capabilityMask);
  for (let cap = 0; cap <= CAP_LAST; cap++) {
    if (!(mask & (1n << BigInt(cap)))) sys.prctl(K.PR_CAPBSET_DROP, cap);
  }
  sys.prctl(K.PR_CAP_AMBIENT, K.PR_CAP_AMBIENT_CLEAR_ALL);
  sys.setgroups(user.additionalGids);
  sys.setresgid(user.gid, user.gid, user.gid);
  sys.setresuid(user.uid, user.uid, user.uid);
  // A non-zero uid has lost every capability in setresuid; root keeps exactly the mask. Nobody
  // keeps an inheritable one (nor so an ambient one), as Docker since CVE-2022-24769.
  const keep = user.uid === 0 ? mask : 0n;
  sys.capset({ effective: keep, permitted: keep, inheritable: 0n });
  if (plan.spec.process.noNewPrivileges) sys.prctl(K.PR_SET_NO_NEW_PRIVS, 1);
}

/**
 * Installs the process's seccomp filter at the right moment, as runc orders it: without
 * no_new_privs the kernel wants CAP_SYS_ADMIN for it, so it goes in `before` the capabilities are
 * dropped (the calls that drop them must then pass the filter); with no_new_privs, `after`
 * everything but the exec, so that as few calls as possible run under it.
 */
function loadSeccomp(proc: RuntimeSpec['process'], phase: 'before' | 'after'): void {
  if (!proc.seccomp || (phase === 'before') === proc.noNewPrivileges) return;
  sys.seccomp(Buffer.from(proc.seccomp, 'hex'));
}

function withHome(env: string[], user: ResolvedUser): string[] {
  return env.some((e) => e.startsWith('HOME=')) ? env : [...env, `HOME=${user.home}`];
}

/**
 * execve with execvp(3)'s PATH search, using the container's PATH (not the zygote's). The
 * program is looked up first (an executable regular file, checked with access(2) as the
 * process's own user): a missing or unusable command fails before {@link EXEC_MARKER} is
 * written, so the start fails. Then the marker, then one execve: the zygote reports the start
 * at the marker, as runc does (its start returns before the init's execve), without waiting for
 * the kernel to tear down this process's copy of the zygote's address space. An execve that
 * still fails (a bad binary format) is reported after the marker and ends the process.
 */
function execProgram(args: string[], env: string[], errorFd: number): never {
  const file = args[0];
  if (!file) throw commandFailure('', 'no command specified', 127);
  let path: string | undefined;
  let denied: unknown;
  const candidates = file.includes('/')
    ? [file]
    : (env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').map((dir) => `${dir || '.'}/${file}`);
  for (const candidate of candidates) {
    const r = sys.executable(candidate);
    if (r === 'ok') {
      path = candidate;
      break;
    }
    if (r === 'denied') denied ??= new KernelError('execve', 13, 'EACCES', candidate);
  }
  if (path === undefined) throw execFailure(file, denied, !file.includes('/'));
  sys.write(errorFd, EXEC_MARKER);
  try {
    sys.execve(path, args, env);
  } catch (e) {
    throw execFailure(file, e, false);
  }
}

function execFailure(file: string, e: unknown, searched: boolean): Error {
  const code = e instanceof KernelError ? e.errnoCode : '';
  if (code === 'EACCES') return commandFailure(file, `exec: "${file}": permission denied`, 126);
  if (code === 'ENOEXEC') return commandFailure(file, `exec: "${file}": exec format error`, 126);
  if (!e || code === 'ENOENT' || code === 'ENOTDIR') {
    return commandFailure(file, searched ? `exec: "${file}": executable file not found in $PATH` : `exec: "${file}": stat ${file}: no such file or directory`, 127);
  }
  return commandFailure(file, `exec: "${file}": ${e instanceof Error ? e.message : String(e)}`, 126);
}

function commandFailure(_file: string, message: string, exitCode: number): Error {
  return Object.assign(new Error(message), { initFailure: { step: 'exec', message, kind: 'command', exitCode } satisfies InitFailure });
}
