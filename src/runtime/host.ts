/**
 * The host process and file-descriptor operations the container manager (`src/container`) needs,
 * so that it never reaches into `src/kernel` itself: signalling a process safely through a pidfd,
 * copying a file descriptor out of another process, pipes, terminals and resource limits, and the
 * process list of a container (`/proc/<pid>/cmdline`). No Docker policy.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { KernelError } from '../errors.js';
import { O_CLOEXEC, O_DIRECTORY, O_PATH, RLIMITS, RLIM_INFINITY, SIGNALS } from '../kernel/constants.js';
import { close, dup, open, pipe2, setNonBlocking } from '../kernel/fd.js';
import { getrlimit, pidfdGetfd, pidfdOpen, pidfdSendSignal } from '../kernel/process.js';
import { setWindowSize } from '../kernel/pty.js';
import { isSameProcess } from './proc.js';

export {
  RLIMITS,
  RLIM_INFINITY,
  SIGNALS,
  dup,
  getrlimit,
  isSameProcess,
  pidfdGetfd,
  pidfdOpen,
  setNonBlocking,
  setWindowSize,
};

/** Closes `fd` (a file descriptor this process owns). */
export function closeFd(fd: number): void {
  close(fd);
}

/**
 * An `O_PATH` fd on the root directory of process `pid` (`/proc/<pid>/root`), or `undefined` when
 * it cannot be opened (the process is gone). The caller checks it is still the same process.
 */
export function openProcessRoot(pid: number): number | undefined {
  try {
    return open(`/proc/${pid}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC);
  } catch {
    return undefined; // exited in between
  }
}

/** A new close-on-exec pipe: `[read end, write end]` (a process's stdin). */
export function stdinPipe(): [number, number] {
  return pipe2(O_CLOEXEC);
}

/** Whether `e` is the kernel's "no such process" (`ESRCH`). */
function isGone(e: unknown): boolean {
  return e instanceof KernelError && e.errnoCode === 'ESRCH';
}

/**
 * Sends `signal` to process `pid` if it is still the one that started at `startTime` (through
 * a pidfd: no pid-reuse race). A process already gone is left alone: its exit is recorded by
 * whoever sees it. Any other failure (no permission, no fd left) is thrown.
 */
export function signalProcess(pid: number, startTime: number, signal: number): void {
  let fd: number;
  try {
    fd = pidfdOpen(pid);
  } catch (e) {
    if (isGone(e)) return;
    throw e;
  }
  try {
    if (isSameProcess(pid, startTime)) pidfdSendSignal(fd, signal);
  } catch (e) {
    // ESRCH: it exited in between.
    if (!isGone(e)) throw e;
  } finally {
    close(fd);
  }
}

/**
 * The command lines of processes `pids` (arguments joined with spaces), as `docker top` shows
 * them; a process gone in between is left out.
 */
export function commandLines(pids: number[]): Array<{ pid: number; command: string }> {
  return pids
    .map((pid) => {
      let command = '';
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      } catch (e) {
        // Gone in between (ENOENT, or ESRCH while its /proc entry is torn down).
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
      return { pid, command };
    })
    .filter((p) => p.command !== '');
}
