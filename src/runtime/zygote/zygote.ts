/**
 * The zygote: a small Node process of berth's own, started once per engine as a child of the
 * user's process (not a daemon). It does nothing but start container inits on request, pump their
 * output into log files, reap them and report their exit. See `protocol.ts` for the sequence.
 *
 * A container's init is `berth-init` (`monitor/init.c`), started with posix_spawn as PID 1 of a
 * new PID namespace (`#spawnInit`), when the engine sends its path and the plan is one it runs
 * (`native-init.ts`); otherwise it is a forked template running `runInit` (`init.ts`). Templates
 * are pooled only once a start has needed one (see `warm`).
 *
 * It runs with `--single-threaded` so V8 keeps no helper threads that could hold a lock at
 * fork time, and stays off libuv's thread pool (only synchronous fs calls and pipes on epoll).
 * It dies with its engine (PDEATHSIG), and its containers die with it (their PDEATHSIG).
 *
 * @module
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, statSync, writeSync, renameSync, writeFileSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { ReadStream as TtyReadStream } from 'node:tty';
import { open, close, pipe2, dup, setNonBlocking } from '../../kernel/fd.js';
import { resolveUser } from '../user.js';
import { exit, fork, waitpid, decodeWaitStatus, kill, pidfdOpen, pidfdGetfd, prctl, spawnProgram } from '../../kernel/process.js';
import { unshare, setns } from '../../kernel/namespaces.js';
import {
  CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS, PR_SET_DUMPABLE, SIGNALS, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_PATH, O_RDONLY, O_WRONLY, WNOHANG, __WALL,
} from '../../kernel/constants.js';
import { KernelError } from '../../errors.js';
import { allowForkOfHeap } from '../fork-safety.js';
import { EXEC_MARKER, TERMINAL_MARKER, runExec, runTemplate, type ExecPlan, type InitFailure, type InitFds } from '../init.js';
import { errnoName } from '../../kernel/libc.js';

/** An exec's user could not be found in the container's files. */
class UserLookupError extends Error {}

/** A start that failed in the zygote at `step` (a step name as the init's failures carry). */
class StartStepError extends Error {
  constructor(readonly step: string, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}
import { nowNs, type LogStream } from '../log-format.js';
import { DEFAULT_LOG_LIMITS, LogWriter } from '../log-writer.js';
import { processStartTime } from '../proc.js';
import { parseExitRecord, type ExecRequest, type ExitRecord, type StartRequest, type ZygoteMessage, type ZygoteRequest } from '../protocol.js';
import { MONITOR_FDS, readLine, runDetachedParent } from '../detach.js';
import { encodeInitPlan, spawnNativeInit } from '../native-init.js';
import { sealedProgram } from '../sealed-program.js';
import { setupNetworkFromHost } from '../net-setup.js';

/** The namespaces an exec joins, in order (mount last: it moves the root). */
const EXEC_NAMESPACES: ReadonlyArray<[string, number]> = [
  ['cgroup', CLONE_NEWCGROUP], ['ipc', CLONE_NEWIPC], ['uts', CLONE_NEWUTS], ['net', CLONE_NEWNET], ['mnt', CLONE_NEWNS],
];

/** How many prepared templates the zygote keeps ready. */
const POOL_SIZE = 2;

/**
 * Bytes set aside for a container's exit file when it starts (one page or block): its exit record
 * is later written into them in place, so a disk the container filled cannot lose its exit, which
 * every other process sharing the root reads to learn it.
 */
const EXIT_FILE_RESERVE = 4096;

/** Where the exit record of the container with exit file `exitPath` is written before its rename. */
function exitTempPath(exitPath: string): string {
  return `${exitPath}.tmp-${process.pid}`;
}

/** Sets aside the room of a container's exit file (see {@link EXIT_FILE_RESERVE}); best effort. */
function reserveExitFile(exitPath: string): void {
  try {
    writeFileSync(exitTempPath(exitPath), Buffer.alloc(EXIT_FILE_RESERVE, 0x20));
  } catch {
    // A full disk already: the exit is written if there is room then.
  }
}

/** Writes `text` into the reserved temp file (in place: no new blocks) and renames it to `exitPath`. */
function writeExitFile(exitPath: string, text: string): void {
  const tmp = exitTempPath(exitPath);
  const buf = Buffer.from(text);
  let fd: number;
  try {
    fd = openSync(tmp, 'r+');
  } catch {
    fd = openSync(tmp, 'w');
  }
  try {
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, off);
    ftruncateSync(fd, buf.length);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, exitPath);
}

/** A forked, prepared init waiting for its plan. */
interface Template {
  pid: number;
  startTime: number;
  unshareFlags: number;
  outR: number;
  errR: number;
  exR: number;
  ctrlW: number;
}

interface Child {
  id: string;
  pid: number;
  startTime: number;
  rid: number;
  /** Writer of a container's log; none for an exec, whose output goes to the engine, or a detached container (its monitor writes it). */
  log?: LogWriter;
  /** Exit file of a container; empty for an exec. */
  exitPath: string;
  exec: boolean;
  openStreams: number;
  /** Write end of the control pipe, while a terminal handover is pending; else -1. */
  ctrlW: number;
  /** While the init waits to be let into its cgroups: the control pipe and the cgroup.procs files to write its pid to. */
  cgroupAck?: { fd: number; procs: string[]; terminal: boolean };
  /** Write end of the process's stdin pipe, kept open while it runs (attachers copy it); else -1. */
  stdinW: number;
  /** Master of the process's terminal; else -1. */
  ttyFd: number;
  /**
   * An exec's terminal master reported to the engine and not yet copied there (`ttyCopied`):
   * kept open past the exec's end until then.
   */
  ttyUncopied?: boolean;
  execResult?: InitFailure | null;
  /**
   * The container's mount namespace, held open until its exit is reported: when its last
   * process exits, the kernel would otherwise unmount its whole tree (and wait out an RCU grace
   * period) before the exit can be reaped; holding it moves that work to our close, after.
   */
  mntNs: number;
  /**
   * A detached container: its monitor (our child, the container's parent), the pipe that lets it
   * start, and whether it has exec'd the monitor program (its end of the pid pipe is close-on-exec:
   * end of file there means its fds are in place and it no longer needs us). The start is
   * reported only then, so an attacher finds the monitor's fds, and an engine that exits right
   * after the start cannot take the container with it.
   */
  detached?: { monitorPid: number; goW: number; exitWritten: boolean; stdin: boolean; ready: boolean; startPending: boolean };
  status?: { exitCode: number; signal?: number; finishedAt: number };
  done: boolean;
}

/** The zygote's state and request handling; one instance per zygote process. */
export class Zygote {
  readonly #send: (m: ZygoteMessage) => void;
  readonly #pidns = open('/proc/self/ns/pid', O_RDONLY | O_CLOEXEC);
  /** Our network namespace, to come back to after making one for a container (see #enterNewNetns). */
  readonly #netns = open('/proc/self/ns/net', O_RDONLY | O_CLOEXEC);
  readonly #ownMntNs = statSync('/proc/self/ns/mnt').ino;
  readonly #ownUserNs = statSync('/proc/self/ns/user').ino;
  readonly #byPid = new Map<number, Child>();
  readonly #byId = new Map<string, Child>();
  readonly #templates = new Map<number, Template>();
  /** Detached containers by their monitor's pid. */
  readonly #byMonitor = new Map<number, Child>();
  #pool: Template[] = [];
  #poolFlags = -1;
  /** Whether a start has needed a forked template: only then is the pool kept full (see {@link Zygote.warm}). */
  #poolWanted = false;
  /** Execs whose terminal master the engine has not copied yet, by exec id (see `ttyCopied`). */
  #execTty = new Map<string, Child>();
  #refilling = false;

  /** Creates the zygote; `send` delivers messages to the engine. */
  constructor(send: (m: ZygoteMessage) => void) {
    this.#send = send;
  }

  /** Handles one request from the engine. */
  handle(req: ZygoteRequest): void {
    if (req.t === 'start') this.#start(req);
    else if (req.t === 'cgroups') {
      const c = this.#byId.get(req.id);
      if (c?.cgroupAck) this.#ackCgroups(c, req.ok);
      this.#send({ t: 'ok', rid: req.rid });
    }
    else if (req.t === 'exec') this.#exec(req);
    else if (req.t === 'ttyCopied') {
      const c = this.#execTty.get(req.id);
      if (c) {
        c.ttyUncopied = false;
        this.#execTty.delete(req.id);
        if (c.done) this.#closeTerminal(c);
      }
      this.#send({ t: 'ok', rid: req.rid });
    }
    else if (req.t === 'gc') {
      // A settled state for measurements: the pool full, then a full collection.
      while (this.#poolWanted && this.#pool.length < POOL_SIZE && this.#poolFlags >= 0) this.#pool.push(this.#fork(this.#poolFlags));
      (globalThis as { gc?: () => void }).gc?.();
      this.#send({ t: 'ok', rid: req.rid });
    }
    else if (req.t === 'signal') {
      const c = this.#byId.get(req.id);
      try {
        if (!c || c.status) throw new Error(`container ${req.id} has no running process`);
        kill(c.pid, req.signal);
        this.#send({ t: 'ok', rid: req.rid });
      } catch (e) {
        this.#send({ t: 'failed', rid: req.rid, error: { step: 'signal', message: (e as Error).message, kind: 'other', exitCode: 1 } });
      }
    }
  }

  /**
   * Forks a template: PID 1 of a new PID namespace that prepares its other namespaces and
   * waits for a plan on its control pipe (see `runTemplate` in `init.ts`).
   */
  #fork(unshareFlags: number, stdin = -1): Template {
    const fds: number[] = [];
    try {
      for (let i = 0; i < 4; i++) fds.push(...pipe2(O_CLOEXEC));
      const [outR, outW, errR, errW, exR, exW, ctrlR, ctrlW] = fds as [number, number, number, number, number, number, number, number];
      const pid = this.#forkIn(() => unshare(CLONE_NEWPID));
      if (pid === 0) runTemplate(unshareFlags, ctrlR, { stdin, stdout: outW, stderr: errW, error: exW });
      for (const fd of [outW, errW, exW, ctrlR]) close(fd);
      const t: Template = { pid, startTime: processStartTime(pid) ?? -1, unshareFlags, outR, errR, exR, ctrlW };
      this.#templates.set(pid, t);
      return t;
    } catch (e) {
      for (const fd of fds) close(fd);
      throw e;
    }
  }

  /**
   * Forks a child into the PID namespace `enterPidns` selects for children (a new one, or a
   * container's), then goes back to the zygote's own for the next forks. Returns 0 in the child.
   *
   * The child is made non-dumpable at once: it is a copy of this process (its environment, the
   * plans and output of every container it has handled) and runs the host's node binary, and it
   * becomes a container's init or exec'd process, seen by the container's processes. Without
   * CAP_SYS_PTRACE they cannot open its `/proc/<pid>/mem`, `environ` or `exe`; the flag goes to
   * its own forks (an `init: true` reaper) and is reset by the execve of the container's program.
   */
  #forkIn(enterPidns: () => void): number {
    // An empty young generation makes a GC (which maps new, unforkable pages) unlikely
    // between making the heap forkable and the fork itself.
    (globalThis as { gc?: (o: { type: string }) => void }).gc?.({ type: 'minor' });
    let pid = -1;
    try {
      enterPidns();
      allowForkOfHeap();
      pid = fork();
      if (pid === 0) {
        try {
          prctl(PR_SET_DUMPABLE, 0);
        } catch {
          exit(126);
        }
      }
    } finally {
      // In the parent only: back to our own PID namespace.
      if (pid !== 0) setns(this.#pidns, CLONE_NEWPID);
    }
    return pid;
  }

  /**
   * Starts `berth-init` (see `monitor/init.c`) as PID 1 of a new PID namespace: unshare(NEWPID),
   * posix_spawn, setns back to our own, as {@link Zygote.#forkIn} does around fork but with no
   * copy of this process's address space. It waits for its plan on the control pipe, as a
   * template does (the plan in the form `native-init.ts` encodes).
   */
  #spawnInit(helper: string, unshareFlags: number, stdin = -1, netns?: { fd: number }): Template {
    const program = sealedProgram(helper, 'berth-init');
    const fds: number[] = [];
    try {
      for (let i = 0; i < 4; i++) fds.push(...pipe2(O_CLOEXEC));
      const [outR, outW, errR, errW, exR, exW, ctrlR, ctrlW] = fds as [number, number, number, number, number, number, number, number];
      let pid: number;
      unshare(CLONE_NEWPID);
      try {
        if (netns) netns.fd = this.#enterNewNetns();
        pid = spawnNativeInit(program, { stdin, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR });
      } finally {
        setns(this.#pidns, CLONE_NEWPID);
        if (netns) setns(this.#netns, CLONE_NEWNET);
      }
      for (const fd of [outW, errW, exW, ctrlR]) close(fd);
      return { pid, startTime: processStartTime(pid) ?? -1, unshareFlags, outR, errR, exR, ctrlW };
    } catch (e) {
      for (const fd of fds) close(fd);
      throw e;
    }
  }

  /**
   * Moves this thread into a new network namespace and returns an fd of it. A child spawned or
   * forked now is made in it; the caller goes back to `#netns` right after. For `berth-init`
   * with network interfaces: the namespace is made here, in the host's, so that we can wire its
   * interfaces from outside (see `setupNetworkFromHost`) while the init makes its mounts.
   */
  #enterNewNetns(): number {
    unshare(CLONE_NEWNET);
    return open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC);
  }

  /**
   * Starts `berth-exec` (see `monitor/exec.c`) in the container's PID namespace with
   * posix_spawn: no copy of this process's address space to make, fault in and tear down, as a
   * fork costs. The user is looked up here, in the container's files seen through
   * `/proc/<pid>/root`. Returns its pid.
   */
  #spawnExec(helper: string, plan: ExecPlan, ns: Array<[number, number]>, pidns: number, fds: InitFds & { ctrl: number }): number {
    const rootFd = open(`/proc/${plan.targetPid}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC);
    let user;
    try {
      user = resolveUser(plan.process.user, rootFd);
    } catch (e) {
      throw new UserLookupError((e as Error).message);
    } finally {
      close(rootFd);
    }
    const proc = plan.process;
    const program = sealedProgram(helper, 'berth-exec');
    const argv = ['berth-exec'];
    for (const f of plan.cgroupProcs) argv.push('--cgroup', f);
    for (const [, type] of ns) argv.push('--ns', String(type));
    argv.push('--uid', String(user.uid), '--gid', String(user.gid), '--groups', user.additionalGids.join(','));
    argv.push('--caps', BigInt(plan.capabilityMask).toString(16), '--cwd', proc.cwd || '/');
    if (proc.noNewPrivileges) argv.push('--nnp');
    if (proc.seccomp) argv.push('--seccomp', proc.seccomp);
    if (proc.terminal) argv.push('--tty', `${proc.terminal.cols}:${proc.terminal.rows}`);
    if (proc.oomScoreAdj !== undefined) argv.push('--oom', String(proc.oomScoreAdj));
    for (const r of proc.rlimits ?? []) argv.push('--rlimit', `${r.resource}:${r.soft}:${r.hard}`);
    argv.push('--', ...proc.args);
    const env = proc.env.some((e) => e.startsWith('HOME=')) ? proc.env : [...proc.env, `HOME=${user.home}`];
    // The fds land on fixed numbers (3 error, 4 control, 5 stdin, 6 stdout, 7 stderr, 8… the
    // namespaces); parked above them first so that no placement overwrites a source.
    const wanted: Array<[number, number]> = [[fds.error, 3], [fds.ctrl, 4], [fds.stdin, 5], [fds.stdout, 6], [fds.stderr, 7]];
    ns.forEach(([fd], i) => wanted.push([fd, 8 + i]));
    const parked: Array<[number, number]> = [];
    try {
      for (const [fd, to] of wanted) if (fd >= 0) parked.push([dup(fd, 100), to]);
      setns(pidns, CLONE_NEWPID);
      try {
        return spawnProgram(program.path, argv, env, parked);
      } finally {
        setns(this.#pidns, CLONE_NEWPID);
      }
    } finally {
      for (const [fd] of parked) close(fd);
    }
  }

  /** Keeps {@link POOL_SIZE} templates of the default flags ready, off the request's path (once wanted). */
  #refill(): void {
    if (this.#refilling || !this.#poolWanted) return;
    this.#refilling = true;
    setImmediate(() => {
      this.#refilling = false;
      try {
        while (this.#pool.length < POOL_SIZE) this.#pool.push(this.#fork(this.#poolFlags));
      } catch {
        // Out of pids or memory: requests fork on demand and report the error.
      }
    });
  }

  /**
   * Sets the unshare flags pooled templates are prepared with. The pool is filled only once a
   * start has needed a forked template: while `berth-init` serves the starts (see
   * {@link StartRequest.init}), templates would be forked and warmed up for nothing. From the
   * first start that takes the JavaScript path on (no `berth-init`, or a plan it does not run, see
   * `nativeInitUnsupported`), {@link POOL_SIZE} templates are kept ready.
   */
  warm(unshareFlags: number): void {
    this.#poolFlags = unshareFlags;
    this.#refill();
  }

  /**
   * Forks the process that becomes a detached container's monitor (see `detach.ts`); it forks
   * the container's init, tells us its pid, and waits for our go before it execs the monitor.
   */
  #forkDetached(flags: number, req: StartRequest, monitor: string, init: string | undefined, netns?: { fd: number }): { template: Template; readyR: number; detached: NonNullable<Child['detached']> } {
    const proc = req.plan.spec.process;
    // Made here, once, and inherited by the fork (see sealed-program.ts).
    const sealedInit = init ? sealedProgram(init, 'berth-init') : undefined;
    const fds: number[] = [];
    try {
      for (let i = 0; i < 6; i++) fds.push(...pipe2(O_CLOEXEC));
      const [outR, outW, errR, errW, exR, exW, ctrlR, ctrlW, goR, goW, pidR, pidW] = fds as [
        number, number, number, number, number, number, number, number, number, number, number, number];
      const [stdinR, stdinW] = proc.stdin && !proc.terminal ? pipe2(O_CLOEXEC) : [-1, -1];
      if (stdinR >= 0) fds.push(stdinR, stdinW);
      const log = open(req.logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640);
      fds.push(log);
      let monitorPid = -1;
      try {
        monitorPid = this.#forkIn(() => {
          if (netns) netns.fd = this.#enterNewNetns();
        });
      } finally {
        // The child stays in the new namespace (its init is made there); we go back.
        if (netns && monitorPid !== 0) setns(this.#netns, CLONE_NEWNET);
      }
      if (monitorPid === 0) {
        close(pidR);
        const initFds = { stdin: stdinR, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR };
        runDetachedParent(flags, { outR, errR, log, stdinW, goR, pidW, init: initFds }, monitor, { exitPath: req.exitPath, logPath: req.logPath, log: req.log ?? DEFAULT_LOG_LIMITS }, sealedInit);
      }
      for (const fd of fds) if (fd !== exR && fd !== ctrlW && fd !== goW && fd !== pidR) close(fd);
      fds.length = 0;
      fds.push(exR, ctrlW, goW, pidR);
      const pidLine = readLine(pidR);
      const pid = Number(pidLine);
      if (!pidLine || !(pid > 0)) throw new Error('the detached container\'s monitor could not fork its init');
      const template: Template = { pid, startTime: processStartTime(pid) ?? -1, unshareFlags: flags, outR: -1, errR: -1, exR, ctrlW };
      return { template, readyR: pidR, detached: { monitorPid, goW, exitWritten: false, stdin: stdinW >= 0, ready: false, startPending: false } };
    } catch (e) {
      for (const fd of fds) close(fd);
      throw e;
    }
  }

  /**
   * An fd on the mount namespace of template `pid` (see `Child.mntNs`), or -1 when it has not
   * made its own yet (a template forked just now) or is gone.
   */
  #holdMountNamespace(pid: number): number {
    try {
      const fd = open(`/proc/${pid}/ns/mnt`, O_RDONLY | O_CLOEXEC);
      if (fstatSync(fd).ino !== this.#ownMntNs) return fd;
      close(fd);
    } catch {
      // Gone: its end is reported as usual.
    }
    return -1;
  }

  /**
   * The plan for `berth-init` when `req` can be started with it (see {@link StartRequest.init}
   * and `nativeInitUnsupported`); undefined when it takes the JavaScript path.
   */
  #nativePlan(req: StartRequest): Buffer | undefined {
    if (!req.init) return undefined;
    // Interfaces are wired from here, in a network namespace we make (the init does not unshare one).
    const plan = req.plan.spec.interfaces?.length ? { ...req.plan, unshareFlags: req.plan.unshareFlags & ~CLONE_NEWNET } : req.plan;
    try {
      return encodeInitPlan(plan);
    } catch {
      return undefined;
    }
  }

  #start(req: StartRequest): void {
    let t: Template | undefined;
    let stdinW = -1;
    let mntNs = -1;
    let readyR = -1;
    const nativePlan = this.#nativePlan(req);
    const init = nativePlan ? req.init : undefined;
    const ifaces = init ? req.plan.spec.interfaces ?? [] : [];
    const netns = ifaces.length ? { fd: -1 } : undefined;
    let made = false;
    let detachedGoW = -1;
    if (!init) {
      this.#poolWanted = true;
      if (this.#pool.length === 0) this.#refill();
    }
    try {
      const flags = req.plan.unshareFlags;
      const proc = req.plan.spec.process;
      let detached: Child['detached'];
      if (req.detach) {
        const d = this.#forkDetached(flags, req, req.detach.monitor, init, netns);
        detachedGoW = d.detached.goW;
        t = d.template;
        readyR = d.readyR;
        detached = d.detached;
      } else if (proc.stdin && !proc.terminal) {
        // A stdin pipe is wired at fork time: this start gets a template of its own.
        const [r, w] = pipe2(O_CLOEXEC);
        stdinW = w;
        try {
          t = init ? this.#spawnInit(init, flags, r, netns) : this.#fork(flags, r);
        } finally {
          close(r);
        }
      } else if (init) t = this.#spawnInit(init, flags, -1, netns);
      else if (flags === this.#poolFlags) t = this.#pool.shift();
      t ??= this.#fork(flags);
      this.#templates.delete(t.pid);
      // A spawned berth-init may not have made its mount namespace yet: then it is taken at its start (#started).
      mntNs = detached ? -1 : this.#holdMountNamespace(t.pid);
      if (nativePlan) writeSync(t.ctrlW, nativePlan);
      else {
        const body = Buffer.from(JSON.stringify(req.plan));
        const header = Buffer.alloc(4);
        header.writeUInt32LE(body.length, 0);
        writeSync(t.ctrlW, Buffer.concat([header, body]));
      }
      if (netns) {
        // While the init makes its mounts; it cannot exec before the cgroup ack, sent below.
        try {
          setupNetworkFromHost(ifaces, netns.fd);
        } catch (e) {
          kill(t.pid, SIGNALS.SIGKILL!);
          throw new StartStepError('network interfaces', e);
        } finally {
          close(netns.fd);
          netns.fd = -1;
        }
      }
      const child: Child = {
        id: req.plan.spec.id, pid: t.pid, startTime: t.startTime, rid: req.rid, exec: false, exitPath: req.exitPath, openStreams: detached ? 0 : 2, done: false,
        ...(detached ? {} : { log: new LogWriter(req.logPath, req.log ?? DEFAULT_LOG_LIMITS) }), ctrlW: proc.terminal ? t.ctrlW : -1, stdinW, ttyFd: -1, mntNs,
        cgroupAck: { fd: t.ctrlW, procs: req.plan.spec.cgroupProcs ?? [], terminal: !!proc.terminal },
        ...(detached ? { detached } : {}),
      };
      if (!detached) reserveExitFile(req.exitPath);
      // Let the init into its cgroups now, or once the engine has made them (see CgroupsReadyRequest).
      if (!req.cgroupsPending) this.#ackCgroups(child, true);
      this.#byId.set(child.id, child);
      made = true;
      if (detached) {
        this.#byMonitor.set(detached.monitorPid, child);
        this.#watchMonitorReady(child, readyR);
        readyR = -1;
      } else {
        this.#byPid.set(t.pid, child);
        this.#pump(child, t.outR, 'stdout');
        this.#pump(child, t.errR, 'stderr');
      }
      this.#watchExec(child, t.exR);
    } catch (e) {
      if (t) for (const fd of [t.outR, t.errR, t.exR]) if (fd >= 0) close(fd);
      // Its control pipe too, unless the child was made (it then owns it).
      if (t && !made && t.ctrlW >= 0) close(t.ctrlW);
      // A detached container's monitor-to-be waits for our go: end of file lets it exit.
      if (detachedGoW >= 0 && !made) close(detachedGoW);
      if (stdinW >= 0) close(stdinW);
      if (mntNs >= 0) close(mntNs);
      if (readyR >= 0) close(readyR);
      if (netns && netns.fd >= 0) close(netns.fd);
      const step = e instanceof StartStepError ? e.step : 'fork';
      const cause = e instanceof StartStepError ? e.cause : e;
      const msg = cause instanceof Error ? cause.message : String(cause);
      const error: InitFailure = cause instanceof KernelError
        ? { step, message: msg, kind: 'kernel', syscall: cause.syscall, errnoCode: cause.errnoCode, exitCode: 1 }
        : { step, message: msg, kind: 'other', exitCode: 1 };
      this.#send({ t: 'failed', rid: req.rid, error });
    }
  }

  /** Forks a process into a running container's namespaces (see `runExec` in `init.ts`). */
  #exec(req: ExecRequest): void {
    const fds: number[] = [];
    const plan = req.plan;
    try {
      if (processStartTime(plan.targetPid) !== plan.targetStartTime) throw new Error(`container process ${plan.targetPid} is not running`);
      const ns: Array<[number, number]> = [];
      for (const [name, type] of EXEC_NAMESPACES) {
        const fd = open(`/proc/${plan.targetPid}/ns/${name}`, O_RDONLY | O_CLOEXEC);
        fds.push(fd);
        ns.push([fd, type]);
      }
      // A container in a user namespace of its own (`userns`): joined last, by berth-exec only.
      if (statSync(`/proc/${plan.targetPid}/ns/user`).ino !== this.#ownUserNs) {
        if (!req.helper) throw new Error('the JavaScript exec path cannot join a container\'s user namespace: it needs berth-exec (a C compiler, and not BERTH_NATIVE_EXEC=0)');
        const fd = open(`/proc/${plan.targetPid}/ns/user`, O_RDONLY | O_CLOEXEC);
        fds.push(fd);
        ns.push([fd, CLONE_NEWUSER]);
      }
      const pidns = open(`/proc/${plan.targetPid}/ns/pid`, O_RDONLY | O_CLOEXEC);
      fds.push(pidns);
      const pipes: number[] = [];
      for (let i = 0; i < 4; i++) pipes.push(...pipe2(O_CLOEXEC));
      fds.push(...pipes);
      const [outR, outW, errR, errW, exR, exW, ctrlR, ctrlW] = pipes as [number, number, number, number, number, number, number, number];
      let stdin = -1;
      if (req.stdinFd !== undefined && !plan.process.terminal) {
        // The engine's pipe end, copied from the engine (our parent) into this process.
        const parent = pidfdOpen(process.ppid);
        try {
          stdin = pidfdGetfd(parent, req.stdinFd);
        } finally {
          close(parent);
        }
        fds.push(stdin);
      }
      let pid: number;
      if (req.helper) pid = this.#spawnExec(req.helper, plan, ns, pidns, { stdin, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR });
      else {
        pid = this.#forkIn(() => setns(pidns, CLONE_NEWPID));
        if (pid === 0) runExec(plan, { fds: ns }, { stdin, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR });
      }
      for (const fd of [...ns.map(([fd]) => fd), pidns, outW, errW, exW, ctrlR, ...(stdin >= 0 ? [stdin] : [])]) close(fd);
      if (!plan.process.terminal) close(ctrlW);
      fds.length = 0;
      const child: Child = {
        id: plan.id, pid, startTime: processStartTime(pid) ?? -1, rid: req.rid, exitPath: '', exec: true,
        openStreams: 2, done: false, ctrlW: plan.process.terminal ? ctrlW : -1, stdinW: -1, ttyFd: -1, mntNs: -1,
      };
      this.#byPid.set(pid, child);
      this.#pump(child, outR, 'stdout');
      this.#pump(child, errR, 'stderr');
      this.#watchExec(child, exR);
    } catch (e) {
      for (const fd of fds) close(fd);
      const msg = e instanceof Error ? e.message : String(e);
      const error: InitFailure = e instanceof UserLookupError
        ? { step: 'user', message: msg, kind: 'user', exitCode: 1 }
        : { step: 'join', message: msg, kind: e instanceof KernelError ? 'kernel' : 'other', exitCode: 126 };
      this.#send({ t: 'failed', rid: req.rid, error });
      // No process was made: report its end at once, so the engine's listener goes away.
      this.#send({ t: 'execExit', id: plan.id, status: { pid: 0, exitCode: 126, finishedAt: Date.now(), error } });
    }
  }

  /**
   * Reads the error pipe of a starting process (see `EXEC_MARKER` and `TERMINAL_MARKER` in
   * `init.ts`): the terminal handover, then the marker, which is the start (replied at once),
   * then a failure report, or end of file when execve succeeded.
   */
  #watchExec(child: Child, fd: number): void {
    let chunks: Buffer[] = [];
    let started = false;
    const sock = new Socket({ fd, readable: true, writable: false });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      if (started) return;
      let text = Buffer.concat(chunks).toString('latin1');
      if (child.ctrlW >= 0 && text.startsWith(TERMINAL_MARKER)) {
        const nl = text.indexOf('\n');
        if (nl < 0) return;
        this.#takeTerminal(child, Number(text.slice(1, nl)));
        text = text.slice(nl + 1);
        chunks = [Buffer.from(text, 'latin1')];
      }
      if (text.startsWith(EXEC_MARKER)) {
        started = true;
        chunks = [Buffer.from(text.slice(EXEC_MARKER.length), 'latin1')];
        this.#started(child);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (child.ctrlW >= 0) {
        close(child.ctrlW);
        child.ctrlW = -1;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      if (started && !text) child.execResult = null;
      else {
        let failure: InitFailure;
        if (!text) failure = { step: 'init', message: 'the container init died before it could run the program', kind: 'other', exitCode: 1 };
        else {
          try {
            failure = JSON.parse(text) as InitFailure & { errno?: number };
            // berth-exec and berth-init report errno numbers: named here, as the kernel layer
            // names them ("mount(…) failed: ENOENT", as a KernelError's message reads).
            const errno = (failure as { errno?: number }).errno;
            if (typeof errno === 'number' && !failure.errnoCode) {
              failure.errnoCode = errnoName(errno);
              failure.message = failure.message.endsWith(' failed') ? `${failure.message}: ${failure.errnoCode}` : `${failure.message} (${failure.errnoCode})`;
            }
            delete (failure as { errno?: number }).errno;
          } catch {
            failure = { step: 'init', message: text, kind: 'other', exitCode: 1 };
          }
        }
        child.execResult = failure;
        // After the start was reported, a failed execve is the process's end (in its exit record).
        if (!started) {
          this.#letMonitorGo(child);
          this.#send({ t: 'failed', rid: child.rid, error: failure });
        }
      }
      this.#maybeFinish(child);
    });
  }

  /**
   * Watches a detached container's monitor until it has exec'd the monitor program (or died):
   * end of file on `fd`. Its exit is not reported before (it counts as an open stream).
   */
  #watchMonitorReady(child: Child, fd: number): void {
    child.openStreams++;
    const sock = new Socket({ fd, readable: true, writable: false });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      const d = child.detached!;
      d.ready = true;
      if (d.startPending) this.#sendStarted(child);
      child.openStreams--;
      this.#maybeFinish(child);
    });
    sock.resume();
  }

  /**
   * The program of `child` is being exec'd: lets a detached one's monitor go, and reports the
   * start (a detached one's once its monitor runs, see `Child.detached`).
   */
  #started(child: Child): void {
    // A spawned berth-init had no mount namespace of its own yet when it was started; it has now.
    if (!child.exec && !child.detached && child.mntNs < 0) child.mntNs = this.#holdMountNamespace(child.pid);
    this.#letMonitorGo(child);
    const d = child.detached;
    if (d && !d.ready) d.startPending = true;
    else this.#sendStarted(child);
  }

  /** Sends the `started` reply of `child`. */
  #sendStarted(child: Child): void {
    const d = child.detached;
    if (d) d.startPending = false;
    this.#send({
      t: 'started', rid: child.rid, pid: child.pid, startTime: child.startTime,
      ...(d
        ? { holderPid: d.monitorPid, ...(d.stdin ? { stdinFd: MONITOR_FDS.stdin } : {}), ...(child.ttyFd >= 0 ? { ttyFd: MONITOR_FDS.output } : {}) }
        : { ...(child.stdinW >= 0 ? { stdinFd: child.stdinW } : {}), ...(child.ttyFd >= 0 ? { ttyFd: child.ttyFd } : {}) }),
    });
    if (child.exec && child.ttyFd >= 0) {
      child.ttyUncopied = true;
      this.#execTty.set(child.id, child);
    }
  }

  /** A detached container's monitor may start: it takes the terminal's master from us, or reads the pipes. */
  #letMonitorGo(child: Child): void {
    const d = child.detached;
    if (!d || d.goW < 0) return;
    try {
      writeSync(d.goW, `${child.ttyFd}\n`);
    } catch {
      // It died: its end is reported by reap().
    }
    close(d.goW);
    d.goW = -1;
  }

  /**
   * Lets `child`'s init into its cgroups: on cgroup v2 we write its pid to its cgroup.procs
   * files while it makes its mounts (a migration may wait for an RCU grace period); on v1 it
   * joins itself through `tasks` once it reads the ack. One byte on the control pipe: `1`, or `0`
   * when its cgroups could not be made or joined (then it fails).
   */
  #ackCgroups(child: Child, ok: boolean): void {
    const ack = child.cgroupAck;
    if (!ack) return;
    child.cgroupAck = undefined;
    let joined = ok;
    try {
      if (ok) for (const f of ack.procs) writeFileSync(f, String(child.pid));
    } catch {
      joined = false;
    }
    try {
      writeSync(ack.fd, joined ? '1' : '0');
    } catch {
      // The init is gone: its end is reported as usual.
    }
    // With a terminal, the pipe stays open for the handover of its master.
    if (!ack.terminal) close(ack.fd);
  }

  /**
   * Copies the master of the terminal `child` made (its fd `fd`) into this process, lets the
   * child go on, and pumps the master's output as stdout. On failure the child is not acked and
   * reports the error itself.
   */
  #takeTerminal(child: Child, fd: number): void {
    let master = -1;
    try {
      const pidfd = pidfdOpen(child.pid);
      try {
        master = pidfdGetfd(pidfd, fd);
      } finally {
        close(pidfd);
      }
      writeSync(child.ctrlW, '1');
    } catch {
      if (master >= 0) close(master);
      master = -1;
    }
    close(child.ctrlW);
    child.ctrlW = -1;
    if (master < 0) return;
    // Kept until the process is reaped, so a copy taken by an attacher while the process runs
    // is always this master (the stream below closes its own fd at the end of output).
    child.ttyFd = master;
    // A detached container's monitor takes the master over and reads it.
    if (child.detached) return;
    const readFd = dup(master);
    // A master reads EIO once every slave fd is closed: the tty stream ends there.
    this.#pump(child, readFd, 'stdout', new TtyReadStream(readFd));
  }

  /** Output of `child`: a record in its log, or a message to the engine for an exec. */
  #output(child: Child, stream: LogStream, d: Buffer): void {
    if (child.exec) this.#send({ t: 'output', id: child.id, stream, data: d.toString('base64') });
    else child.log?.write(stream, nowNs(), d);
  }

  /**
   * Reads what is left on a terminal's master once its process has ended and its stream has
   * closed. The stream ends at the first EIO, and the kernel can report that while the last
   * output is still on its way to the master: measured on this VM's 6.18 kernel under full CPU
   * load, 2 of 900 short tty containers lost their last line before this; with it, 3 of 900 had
   * their last 3 bytes read here and none lost any. Non-blocking (a process the ended one left behind may still hold
   * the terminal): ends at EAGAIN or EIO.
   */
  #drainTerminal(child: Child): void {
    const buf = Buffer.allocUnsafe(65536);
    try {
      setNonBlocking(child.ttyFd, true);
    } catch {
      return;
    }
    for (;;) {
      let n: number;
      try {
        n = readSync(child.ttyFd, buf, 0, buf.length, null);
      } catch {
        return;
      }
      if (n <= 0) return;
      this.#output(child, 'stdout', Buffer.from(buf.subarray(0, n)));
    }
  }

  #pump(child: Child, fd: number, stream: LogStream, source?: TtyReadStream): void {
    if (source) child.openStreams++;
    const sock = source ?? new Socket({ fd, readable: true, writable: false });
    sock.on('data', (d: Buffer) => this.#output(child, stream, d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      child.openStreams--;
      this.#maybeFinish(child);
    });
  }

  /** Reaps every exited child (called on SIGCHLD). */
  reap(): void {
    for (;;) {
      let r;
      try {
        r = waitpid(-1, WNOHANG | __WALL);
      } catch (e) {
        if (e instanceof KernelError && e.errnoCode === 'ECHILD') return;
        throw e;
      }
      if (r.pid <= 0) return;
      const status = { ...decodeWaitStatus(r.status), finishedAt: Date.now() };
      const tpl = this.#templates.get(r.pid);
      if (tpl) {
        // A template died before it was used (its preparation failed): drop it.
        this.#templates.delete(r.pid);
        this.#pool = this.#pool.filter((t) => t !== tpl);
        for (const fd of [tpl.outR, tpl.errR, tpl.exR, tpl.ctrlW]) close(fd);
        continue;
      }
      const detached = this.#byMonitor.get(r.pid);
      if (detached) {
        this.#byMonitor.delete(r.pid);
        this.#monitorEnded(detached, status);
        continue;
      }
      const child = this.#byPid.get(r.pid);
      if (!child) continue;
      child.status = status;
      this.#maybeFinish(child);
    }
  }

  /**
   * A detached container's monitor ended: the container's exit is what it wrote. Without an
   * exit file the monitor was killed, and the container with it (PDEATHSIG): recorded as SIGKILL.
   */
  #monitorEnded(child: Child, monitorStatus: { finishedAt: number }): void {
    const d = child.detached!;
    if (d.goW >= 0) close(d.goW);
    d.goW = -1;
    let written: ExitRecord | undefined;
    try {
      const parsed = parseExitRecord(JSON.parse(readFileSync(child.exitPath, 'utf8')));
      if (parsed && parsed.pid === child.pid) written = parsed;
    } catch {
      // No exit file.
    }
    d.exitWritten = written !== undefined;
    child.status = written
      ? { exitCode: written.exitCode, ...(written.signal !== undefined ? { signal: written.signal } : {}), finishedAt: written.finishedAt }
      : { exitCode: 137, signal: 9, finishedAt: monitorStatus.finishedAt };
    // Its init's report may still be pending (it died before execve): do not wait for it.
    child.execResult ??= null;
    this.#maybeFinish(child);
  }

  #maybeFinish(child: Child): void {
    if (child.done || !child.status || child.openStreams > 0 || child.execResult === undefined) return;
    child.done = true;
    this.#byPid.delete(child.pid);
    if (child.ttyFd >= 0 && !child.detached) this.#drainTerminal(child);
    if (child.stdinW >= 0) close(child.stdinW);
    child.stdinW = -1;
    if (!child.ttyUncopied) this.#closeTerminal(child);
    // Ended before it was let into its cgroups.
    if (child.cgroupAck && !child.cgroupAck.terminal) close(child.cgroupAck.fd);
    child.cgroupAck = undefined;
    if (child.exec) {
      const status: ExitRecord = { pid: child.pid, ...child.status };
      if (child.execResult) Object.assign(status, { error: child.execResult, exitCode: child.execResult.exitCode, signal: undefined });
      this.#send({ t: 'execExit', id: child.id, status: JSON.parse(JSON.stringify(status)) as ExitRecord });
      return;
    }
    child.log?.close();
    if (this.#byId.get(child.id) === child) this.#byId.delete(child.id);
    const record: ExitRecord = { pid: child.pid, ...child.status };
    if (child.execResult) {
      record.error = child.execResult;
      record.exitCode = child.execResult.exitCode;
      delete record.signal;
    }
    try {
      if (child.detached?.exitWritten) throw new Error('written by the monitor');
      writeExitFile(child.exitPath, JSON.stringify(record));
    } catch {
      // The container's directory is gone (removed while running): nothing to record.
    }
    this.#send({ t: 'exit', id: child.id, status: record });
    if (child.mntNs >= 0) {
      // Its mounts are torn down now, in this process, once the exit is on its way. (Not on
      // libuv's thread pool: the zygote keeps no threads that could hold a lock when it forks.)
      const fd = child.mntNs;
      child.mntNs = -1;
      setImmediate(() => close(fd));
    }
    // Refill when a container is done rather than while an init runs: a template forked then
    // would compete with it for the CPU and the kernel's namespace locks.
    this.#refill();
  }

  /** Closes `child`'s terminal master, if it has one. */
  #closeTerminal(child: Child): void {
    if (child.ttyFd >= 0) close(child.ttyFd);
    child.ttyFd = -1;
  }

  /** Number of containers whose process has not been reported as ended yet. */
  get running(): number {
    return this.#byPid.size;
  }
}
