/**
 * How the zygote makes processes: a forked template (`runTemplate`), `berth-init` by
 * posix_spawn, the fork that becomes a detached container's monitor, and `berth-exec` in a
 * container's PID namespace. Each enters the PID (and network) namespace for its child on this
 * thread and comes back to the zygote's own right after. The fds each acquires go into the
 * caller's {@link FdSet}: the child's ends are closed here once the child has them, the rest
 * stay owned by the caller until it hands them over.
 *
 * @module
 */
import { fstatSync, statSync } from 'node:fs';
import { close, open } from '../../kernel/fd.js';
import { BerthError } from '../../errors.js';
import { exit, fork, prctl, spawnProgram } from '../../kernel/process.js';
import { unshare, setns } from '../../kernel/namespaces.js';
import {
  CLONE_NEWNET,
  CLONE_NEWPID,
  PR_SET_DUMPABLE,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_RDONLY,
  O_WRONLY,
} from '../../kernel/constants.js';
import { allowForkOfHeap } from '../fork-safety.js';
import { runTemplate } from '../init.js';
import { processStartTime } from '../proc.js';
import type { StartRequest } from '../protocol.js';
import { readLine, runDetachedParent } from '../detach.js';
import { spawnNativeInit } from '../native-init.js';
import { sealedProgram } from '../sealed-program.js';
import { DEFAULT_LOG_LIMITS } from '../log-writer.js';
import { containerStdin, type FdSet } from './fds.js';

/** A forked, prepared init waiting for its plan. */
export interface Template {
  pid: number;
  startTime: number;
  unshareFlags: number;
  outR: number;
  errR: number;
  exR: number;
  ctrlW: number;
}

/**
 * A detached container: its monitor (our child, the container's parent), the pipe that lets it
 * start, and whether it has exec'd the monitor program (its end of the pid pipe is close-on-exec:
 * end of file there means its fds are in place and it no longer needs us). The start is
 * reported only then, so an attacher finds the monitor's fds, and an engine that exits right
 * after the start cannot take the container with it.
 */
export interface Detached {
  monitorPid: number;
  goW: number;
  exitWritten: boolean;
  stdin: boolean;
  ready: boolean;
  startPending: boolean;
}

/** The zygote's namespaces and the ways it makes a child in others. One per zygote. */
export class Spawner {
  readonly #pidns = open('/proc/self/ns/pid', O_RDONLY | O_CLOEXEC);
  /** Our network namespace, to come back to after making one for a container (see #enterNewNetns). */
  readonly #netns = open('/proc/self/ns/net', O_RDONLY | O_CLOEXEC);
  readonly #ownMntNs = statSync('/proc/self/ns/mnt').ino;
  /** Inode of the zygote's own user namespace (a container with another one is joined into it by an exec). */
  readonly ownUserNs = statSync('/proc/self/ns/user').ino;

  /**
   * Forks a template: PID 1 of a new PID namespace that prepares its other namespaces and
   * waits for a plan on its control pipe (see `runTemplate` in `init.ts`).
   */
  forkTemplate(fds: FdSet, unshareFlags: number, stdin = -1): Template {
    const [outR, outW] = fds.pipe();
    const [errR, errW] = fds.pipe();
    const [exR, exW] = fds.pipe();
    const [ctrlR, ctrlW] = fds.pipe();
    const pid = this.forkIn(() => unshare(CLONE_NEWPID));
    if (pid === 0) runTemplate(unshareFlags, ctrlR, { stdin, stdout: outW, stderr: errW, error: exW });
    for (const fd of [outW, errW, exW, ctrlR]) fds.close(fd);
    return { pid, startTime: processStartTime(pid) ?? -1, unshareFlags, outR, errR, exR, ctrlW };
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
  forkIn(enterPidns: () => void): number {
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
          // A child that cannot be made non-dumpable must not run: it ends, and its parent sees 126.
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
   * posix_spawn, setns back to our own, as {@link Spawner.forkIn} does around fork but with no
   * copy of this process's address space. It waits for its plan on the control pipe, as a
   * template does (the plan in the form `native-init.ts` encodes).
   */
  spawnInit(fds: FdSet, helper: string, unshareFlags: number, stdin = -1, netns?: { fd: number }): Template {
    const program = sealedProgram(helper, 'berth-init');
    const [outR, outW] = fds.pipe();
    const [errR, errW] = fds.pipe();
    const [exR, exW] = fds.pipe();
    const [ctrlR, ctrlW] = fds.pipe();
    let pid: number;
    unshare(CLONE_NEWPID);
    try {
      if (netns) netns.fd = fds.add(this.enterNewNetns());
      pid = spawnNativeInit(program, { stdin, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR });
    } finally {
      setns(this.#pidns, CLONE_NEWPID);
      if (netns) setns(this.#netns, CLONE_NEWNET);
    }
    for (const fd of [outW, errW, exW, ctrlR]) fds.close(fd);
    return { pid, startTime: processStartTime(pid) ?? -1, unshareFlags, outR, errR, exR, ctrlW };
  }

  /**
   * Moves this thread into a new network namespace and returns an fd of it. A child spawned or
   * forked now is made in it; the caller goes back to `#netns` right after. For `berth-init`
   * with network interfaces: the namespace is made here, in the host's, so that we can wire its
   * interfaces from outside (see `setupNetworkFromHost`) while the init makes its mounts.
   */
  enterNewNetns(): number {
    unshare(CLONE_NEWNET);
    return open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC);
  }

  /**
   * posix_spawns `path` as a child in the PID namespace `pidns` (a container's), then goes back
   * to our own: `berth-exec` (see `exec.ts`). `fds`: `[fd, number in the child]` pairs.
   */
  spawnInPidns(pidns: number, path: string, argv: string[], env: string[], fds: Array<[number, number]>): number {
    setns(pidns, CLONE_NEWPID);
    try {
      return spawnProgram(path, argv, env, fds);
    } finally {
      setns(this.#pidns, CLONE_NEWPID);
    }
  }

  /**
   * Forks the process that becomes a detached container's monitor (see `detach.ts`); it forks
   * the container's init, tells us its pid, and waits for our go before it execs the monitor.
   */
  forkDetached(
    fds: FdSet,
    flags: number,
    req: StartRequest,
    monitor: string,
    init: string | undefined,
    netns?: { fd: number },
  ): { template: Template; readyR: number; detached: Detached } {
    const proc = req.plan.spec.process;
    // Made here, once, and inherited by the fork (see sealed-program.ts).
    const sealedInit = init ? sealedProgram(init, 'berth-init') : undefined;
    const [outR, outW] = fds.pipe();
    const [errR, errW] = fds.pipe();
    const [exR, exW] = fds.pipe();
    const [ctrlR, ctrlW] = fds.pipe();
    const [goR, goW] = fds.pipe();
    const [pidR, pidW] = fds.pipe();
    const [stdinR, stdinW] = proc.stdin && !proc.terminal ? containerStdin(fds, req.stdinFd) : [-1, -1];
    const log = fds.add(open(req.logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640));
    let monitorPid = -1;
    try {
      monitorPid = this.forkIn(() => {
        if (netns) netns.fd = fds.add(this.enterNewNetns());
      });
    } finally {
      // The child stays in the new namespace (its init is made there); we go back.
      if (netns && monitorPid !== 0) setns(this.#netns, CLONE_NEWNET);
    }
    if (monitorPid === 0) {
      close(pidR);
      const initFds = { stdin: stdinR, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR };
      runDetachedParent(
        flags,
        { outR, errR, log, stdinW, goR, pidW, init: initFds },
        monitor,
        {
          exitPath: req.exitPath,
          logPath: req.logPath,
          log: req.log ?? DEFAULT_LOG_LIMITS,
          timeout: req.detach?.timeout,
        },
        sealedInit,
      );
    }
    for (const fd of [outR, outW, errR, errW, exW, ctrlR, goR, pidW, stdinR, stdinW, log]) fds.close(fd);
    const pidLine = readLine(pidR);
    const pid = Number(pidLine);
    if (!pidLine || !(pid > 0))
      throw new BerthError('KERNEL', "the detached container's monitor could not fork its init");
    const template: Template = {
      pid,
      startTime: processStartTime(pid) ?? -1,
      unshareFlags: flags,
      outR: -1,
      errR: -1,
      exR,
      ctrlW,
    };
    return {
      template,
      readyR: pidR,
      detached: { monitorPid, goW, exitWritten: false, stdin: stdinW >= 0, ready: false, startPending: false },
    };
  }

  /**
   * An fd on the mount namespace of template `pid` (see `Child.mntNs`), or -1 when it has not
   * made its own yet (a template forked just now) or is gone.
   */
  holdMountNamespace(pid: number): number {
    try {
      const fd = open(`/proc/${pid}/ns/mnt`, O_RDONLY | O_CLOEXEC);
      if (fstatSync(fd).ino !== this.#ownMntNs) return fd;
      close(fd);
    } catch {
      // Gone: its end is reported as usual.
    }
    return -1;
  }
}
