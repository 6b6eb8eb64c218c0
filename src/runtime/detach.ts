/**
 * Detached containers (Docker's `-d`): a container that outlives the engine process that
 * started it. Beside it runs berth's monitor (`monitor/monitor.c`), a freestanding program of a
 * few KiB with no Node in it: the container's parent, which keeps reading its output into the
 * log, waits for it and writes its exit file. See `runDetachedParent` for how it is made.
 *
 * ```text
 *  zygote                    C (fork of the zygote)                 T (PID 1 of a new pidns)
 *  ──────                    ──────────────────────                 ────────────────────────
 *  pipes, log fd; fork() ──▶ setsid(); unshare(NEWPID);             berth-init (posix_spawn), or
 *                            posix_spawn or fork() ───────────────▶ runTemplate(): waits for its plan
 *                            close T's pipe ends
 *  plan, cgroup ack ─────────────────────────────────────────────▶ mounts, pivot_root …
 *  (terminal: takes the master from T) ◀──────────────────────────  EXEC_MARKER, execve
 *  "go <master fd|-1>" ────▶ copies the master (pidfd_getfd),
 *                            fds 3–6, execve(monitor, T, exit path)
 *                            = the monitor: T's parent, pumps T's
 *                              output into the log, writes the exit file
 * ```
 *
 * The monitor is a child of the zygote until the zygote ends (then of the system's init): the
 * zygote reports its end as the container's exit while it lives. T dies with the monitor
 * (PDEATHSIG), never with the engine.
 *
 * @module
 */
import { close, closeRange, dup, dup2, open, read, write } from '../kernel/fd.js';
import { execve, exit, fork, pidfdGetfd, pidfdOpen, setsid } from '../kernel/process.js';
import { unshare } from '../kernel/namespaces.js';
import { CLONE_NEWPID, O_RDWR } from '../kernel/constants.js';
import { allowForkOfHeap } from './fork-safety.js';
import { closeOtherFds, runTemplate } from './init.js';
import type { InitFds } from './init-report.js';
import { spawnNativeInit } from './native-init.js';
import type { SealedProgram } from './sealed-program.js';
import type { LogLimits } from './log-writer.js';

/** The monitor's fds, fixed by its contract (see `monitor/monitor.c`). */
export const MONITOR_FDS = { output: 3, stderr: 4, log: 5, stdin: 6 } as const;

/** What the fork of the zygote that becomes a detached container's monitor is given. */
export interface DetachedParentFds {
  /** Read ends of the container's stdout and stderr pipes. */
  outR: number;
  /** stderr read end. */
  errR: number;
  /** The log file, opened for appending. */
  log: number;
  /** Write end of the container's stdin pipe, or -1. */
  stdinW: number;
  /** Read end of the zygote's "go" pipe. */
  goR: number;
  /** Write end of the pipe the init's pid is reported on. */
  pidW: number;
  /** The container init's ends: its stdio, error and control pipes. */
  init: InitFds & { ctrl: number };
}

/**
 * Runs in a fresh fork of the zygote: starts the container's init as PID 1 of a new PID
 * namespace (with `init`, the zygote's sealed copy of `berth-init`, by posix_spawn, else a forked
 * template; either waits for its plan from the zygote), waits for the zygote's go, then execs the
 * monitor on the container's output. Never returns.
 */
export function runDetachedParent(
  unshareFlags: number,
  fds: DetachedParentFds,
  monitor: string,
  files: { exitPath: string; logPath: string; log: LogLimits; timeout?: number | undefined },
  init?: SealedProgram,
): never {
  try {
    const i = fds.init;
    closeOtherFds(
      [
        fds.outR,
        fds.errR,
        fds.log,
        fds.stdinW,
        fds.goR,
        fds.pidW,
        i.stdout,
        i.stderr,
        i.error,
        i.ctrl,
        i.stdin,
        init?.fd ?? -1,
      ].filter((fd) => fd >= 0),
    );
    // Out of the engine's session and process group: its terminal's signals never reach us.
    setsid();
    unshare(CLONE_NEWPID);
    let pid: number;
    if (init) pid = spawnNativeInit(init, fds.init);
    else {
      allowForkOfHeap();
      pid = fork();
      if (pid === 0) runTemplate(unshareFlags, fds.init.ctrl, fds.init);
    }
    for (const fd of [fds.init.stdout, fds.init.stderr, fds.init.error, fds.init.ctrl, fds.init.stdin])
      if (fd >= 0) close(fd);
    write(fds.pidW, `${pid}\n`);
    close(fds.pidW);
    const go = readLine(fds.goR);
    if (go === undefined) exit(1); // The zygote is gone: the init dies with us (PDEATHSIG).
    const ttyInZygote = Number(go);
    let output = fds.outR;
    let stderr = fds.errR;
    if (ttyInZygote >= 0) {
      const zygote = pidfdOpen(process.ppid);
      output = pidfdGetfd(zygote, ttyInZygote);
      stderr = -1;
    }
    // Park every fd above the fixed numbers before placing them, so no placement clobbers another.
    const park = (fd: number) => (fd >= 0 ? dup(fd, 100) : -1);
    const parked = [park(output), park(stderr), park(fds.log), park(fds.stdinW)];
    const targets = [MONITOR_FDS.output, MONITOR_FDS.stderr, MONITOR_FDS.log, MONITOR_FDS.stdin];
    closeRange(3, 99, 0);
    parked.forEach((fd, i) => {
      if (fd >= 0) dup2(fd, targets[i]!);
    });
    closeRange(MONITOR_FDS.stdin + 1, 0xffffffff, 0);
    // Let go of the engine's stdio (often the user's terminal).
    const devNull = open('/dev/null', O_RDWR);
    for (const fd of [0, 1, 2]) dup2(devNull, fd);
    if (devNull > 2) close(devNull);
    execve(monitor, [monitor, String(pid), files.exitPath, files.logPath, ...monitorLimits(files)], []);
  } catch {
    // Without the monitor the container cannot be kept: it dies with this process.
  }
  exit(1);
}

/**
 * The monitor's arguments after `<log-path>` (see `monitor/monitor.c`): `<max-size> <max-file>
 * <max-output> <keep> <timeout-ms>`, 0 for no output cap and for no run time limit.
 */
export function monitorLimits(files: { log: LogLimits; timeout?: number | undefined }): string[] {
  const { maxSize, maxFile, maxOutput, keep } = files.log;
  return [maxSize, maxFile, maxOutput ?? 0, keep ?? 'head', files.timeout ?? 0].map(String);
}

/** Reads one `\n`-terminated line (blocking); undefined at end of file. */
export function readLine(fd: number): string | undefined {
  let line = '';
  const b = Buffer.alloc(1);
  for (;;) {
    if (read(fd, b) === 0) return undefined;
    if (b[0] === 0x0a) return line;
    line += String.fromCharCode(b[0]!);
  }
}
