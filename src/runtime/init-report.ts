/**
 * How a container's init (or an exec) reports to the zygote: the fds it is given, the markers it
 * writes on its error pipe (the terminal handover, the exec), and its failures as JSON. The
 * JavaScript init (`init.ts`), `berth-init` and `berth-exec` speak the same protocol.
 *
 * @module
 */
import { KernelError } from '../errors.js';
import { sys } from './init-sys.js';

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

/** The {@link InitFailure} of an error thrown at `step`. */
export function failureOf(step: string, e: unknown): InitFailure {
  if (e && typeof e === 'object' && 'initFailure' in e) return (e as { initFailure: InitFailure }).initFailure;
  if (e instanceof KernelError) {
    return {
      step,
      message: `${step}: ${e.message}`,
      kind: 'kernel',
      syscall: e.syscall,
      errnoCode: e.errnoCode,
      exitCode: 1,
    };
  }
  const message = e instanceof Error ? e.message : String(e);
  return {
    step,
    message: step === 'user' ? message : `${step}: ${message}`,
    kind: step === 'user' ? 'user' : 'other',
    exitCode: 1,
  };
}

/** Writes `failure` on the error pipe `fd` and exits with its code. */
export function report(fd: number, failure: InitFailure): never {
  try {
    sys.write(fd, JSON.stringify(failure));
  } finally {
    sys.exit(failure.exitCode === 0 ? 1 : failure.exitCode);
  }
}

/** The failure of a program that could not be executed (`file`, looked up in PATH when `searched`). */
export function execFailure(file: string, e: unknown, searched: boolean): Error {
  const code = e instanceof KernelError ? e.errnoCode : '';
  if (code === 'EACCES') return commandFailure(file, `exec: "${file}": permission denied`, 126);
  if (code === 'ENOEXEC') return commandFailure(file, `exec: "${file}": exec format error`, 126);
  if (!e || code === 'ENOENT' || code === 'ENOTDIR') {
    return commandFailure(
      file,
      searched
        ? `exec: "${file}": executable file not found in $PATH`
        : `exec: "${file}": stat ${file}: no such file or directory`,
      127,
    );
  }
  return commandFailure(file, `exec: "${file}": ${e instanceof Error ? e.message : String(e)}`, 126);
}

/** An error carrying the `command` {@link InitFailure} with `message` and `exitCode`. */
export function commandFailure(_file: string, message: string, exitCode: number): Error {
  return Object.assign(new Error(message), {
    initFailure: { step: 'exec', message, kind: 'command', exitCode } satisfies InitFailure,
  });
}
