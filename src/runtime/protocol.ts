/**
 * Messages between an engine process and its zygote, over the Node IPC channel of the zygote
 * (JSON). Requests carry a `rid` echoed by the reply; exits are pushed unasked.
 *
 * ```text
 *  engine (user's process)            zygote (node --single-threaded)         init (berth-init)
 *  ───────────────────────            ───────────────────────────────         ─────────────────
 *  start {rid, plan, logPath, init} ▶ pipe2 ×4
 *                                     unshare(NEWPID); posix_spawn ──────────▶ PID 1 of a new pidns
 *                                     setns(back to own pidns)
 *                                     plan (native encoding) on ctrl pipe ───▶ unshare(mnt,uts,ipc,net)
 *                                     close child ends                         overlay, pivot_root, /proc, /dev …
 *                                     pump stdout/stderr ─▶ log file           user, caps, stdio
 *                                     error pipe: EXEC_MARKER ◀─────────────── marker, execve (error pipe closes)
 *  ◀──────────── started {rid, pid, startTime}                                 the user's program runs
 *                                      (or: failure JSON on the error pipe ─▶ failed {rid, error})
 *                                     SIGCHLD → waitpid; logs drained
 *  ◀──────────── exit {id, exitCode, signal, finishedAt}   (+ exit file written for other processes)
 * ```
 *
 * Without `init` (no `berth-init`), or for a plan it does not run, the init is a template forked
 * from the zygote (madvise(DOFORK), unshare(NEWPID), fork) that gets the plan as JSON and runs
 * `runInit`; the rest is the same.
 *
 * @module
 */
import type { Plan } from './plan.js';
import type { LogLimits } from './log-writer.js';
import type { ExecPlan } from './init.js';
import type { InitFailure } from './init-report.js';
import type { OutputTruncated } from './log-cap.js';

/** Engine → zygote: start a container process. */
export interface StartRequest {
  /** Message type. */
  t: 'start';
  /** Request id, echoed in the reply. */
  rid: number;
  /** What the init does. */
  plan: Plan;
  /** File the process's output is appended to (see `log-format.ts`). */
  logPath: string;
  /** File the exit status is written to (atomically) when the process ends. */
  exitPath: string;
  /** Rotation of the log (see `log-writer.ts`); the default cap when absent. */
  log?: LogLimits;
  /**
   * Detach the container from the engine (see `detach.ts`): this monitor program becomes its
   * parent, its output pump and its exit recorder, and it outlives the zygote. With `timeout`
   * (ms) the monitor also enforces the container's run time limit: it SIGKILLs the run when
   * that time has passed since its program started, and its exit file says `timedOut`.
   */
  detach?: { monitor: string; timeout?: number };
  /**
   * The container's cgroups are still being made: the init is not let into them until a
   * {@link CgroupsReadyRequest} for this container arrives (it makes its mounts meanwhile).
   */
  cgroupsPending?: boolean;
  /**
   * Path of `berth-init` (see `monitor/init.c`): when given, the container's init is that program,
   * started with posix_spawn, unless the plan needs the JavaScript init (see `nativeInitUnsupported`).
   */
  init?: string;
  /**
   * The read end of a pipe in the engine process that becomes the program's stdin (the zygote
   * copies it with `pidfd_getfd(2)`), for a plan with `process.stdin`: the engine writes the input
   * and closes its write end (end of file); neither the zygote nor a monitor holds one.
   */
  stdinFd?: number;
}

/** Engine → zygote: the cgroups of a container started with `cgroupsPending` are made (or failed). */
export interface CgroupsReadyRequest {
  /** Message type. */
  t: 'cgroups';
  /** Request id. */
  rid: number;
  /** Container id. */
  id: string;
  /** Whether they were made; if not, the init fails. */
  ok: boolean;
}

/** Engine → zygote: signal a process the zygote started (by container id). */
export interface SignalRequest {
  /** Message type. */
  t: 'signal';
  /** Request id. */
  rid: number;
  /** Container id. */
  id: string;
  /** Signal number. */
  signal: number;
}

/** Engine → zygote: run a process in a running container. */
export interface ExecRequest {
  /** Message type. */
  t: 'exec';
  /** Request id. */
  rid: number;
  /** What to run, and where. */
  plan: ExecPlan;
  /**
   * The read end of a pipe in the engine process that becomes the process's stdin (the zygote
   * copies it with `pidfd_getfd(2)`); absent: /dev/null, or the terminal.
   */
  stdinFd?: number;
  /**
   * Path of `berth-exec` (see `monitor/exec.c`): when given, the process is started with
   * posix_spawn of that program instead of a fork of the zygote.
   */
  helper?: string;
}

/** Engine → zygote: run a full garbage collection (for memory measurements). */
export interface GcRequest {
  /** Message type. */
  t: 'gc';
  /** Request id. */
  rid: number;
}

/**
 * Engine → zygote: the engine holds its own copy of an exec's terminal master (`ttyFd` of its
 * `started` reply), so the zygote may close its own once the exec has ended. Until then the
 * zygote keeps it, however quickly the exec ends: a master closed before the engine copied it
 * would be gone (or its number reused).
 */
export interface TtyCopiedRequest {
  /** Message type. */
  t: 'ttyCopied';
  /** Request id. */
  rid: number;
  /** Exec id. */
  id: string;
}

/** Any request to the zygote. */
export type ZygoteRequest =
  StartRequest | SignalRequest | ExecRequest | GcRequest | CgroupsReadyRequest | TtyCopiedRequest;

/** Zygote → engine: output of an exec'd process (base64, as IPC carries JSON). */
export interface ExecOutputNotice {
  /** Message type. */
  t: 'output';
  /** Exec id. */
  id: string;
  /** Which stream. */
  stream: 'stdout' | 'stderr';
  /** The bytes, base64. */
  data: string;
}

/** Zygote → engine: an exec'd process ended and its output is drained. */
export interface ExecExitNotice {
  /** Message type. */
  t: 'execExit';
  /** Exec id. */
  id: string;
  /** Exit status. */
  status: ExitRecord;
}

/** Zygote → engine: the process runs (execve succeeded). */
export interface StartedReply {
  /** Message type. */
  t: 'started';
  /** The request id. */
  rid: number;
  /** Host pid of the container's PID 1. */
  pid: number;
  /** Its start time in clock ticks since boot (/proc/PID/stat field 22), to detect pid reuse. */
  startTime: number;
  /** The zygote's fd of the write end of the process's stdin pipe, kept open while it runs. */
  stdinFd?: number;
  /** The zygote's fd of the master of the process's terminal. */
  ttyFd?: number;
  /** The process holding `stdinFd` and `ttyFd` when it is not the zygote (a detached container's monitor). */
  holderPid?: number;
}

/** Zygote → engine: the request failed. */
export interface FailedReply {
  /** Message type. */
  t: 'failed';
  /** The request id. */
  rid: number;
  /** What failed. */
  error: InitFailure;
}

/** Zygote → engine: a request without a result succeeded. */
export interface OkReply {
  /** Message type. */
  t: 'ok';
  /** The request id. */
  rid: number;
}

/** Zygote → engine: a container's PID 1 ended and its output is drained. */
export interface ExitNotice {
  /** Message type. */
  t: 'exit';
  /** Container id. */
  id: string;
  /** Exit status. */
  status: ExitRecord;
}

/** What the zygote records when a container's process ends. */
export interface ExitRecord {
  /** Host pid that ended. */
  pid: number;
  /** Exit code (128 + signal for a signal). */
  exitCode: number;
  /** The signal that ended it, if any. */
  signal?: number;
  /** When it ended (ms since epoch). */
  finishedAt: number;
  /** The start failure, when execve never happened. */
  error?: InitFailure;
  /** The run was killed by its monitor for outliving its run time limit (detached containers). */
  timedOut?: boolean;
  /** Streams of which the output cap (`LogLimits.maxOutput`) dropped bytes. */
  outputTruncated?: OutputTruncated;
}

/** Any message from the zygote. */
export type ZygoteMessage = StartedReply | FailedReply | OkReply | ExitNotice | ExecOutputNotice | ExecExitNotice;

// The checks below are written by hand, not as zod schemas: the zygote imports this module, and
// zod would add ~8 MB to its heap, and so to every process forked from it (templates, execs),
// which the kernel then copies at fork and tears down in execve.

const isInt = (v: unknown): v is number => Number.isInteger(v);
const FAILURE_KINDS: ReadonlySet<unknown> = new Set(['command', 'user', 'kernel', 'other']);

/**
 * Checks an exit record read back from disk (written by the zygote or by `berth-monitor`);
 * undefined when it is not one.
 */
export function parseExitRecord(value: unknown): ExitRecord | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const r = value as Record<string, unknown>;
  if (
    !isInt(r.pid) ||
    !isInt(r.exitCode) ||
    typeof r.finishedAt !== 'number' ||
    (r.signal !== undefined && !isInt(r.signal)) ||
    (r.timedOut !== undefined && typeof r.timedOut !== 'boolean') ||
    (r.outputTruncated !== undefined && (typeof r.outputTruncated !== 'object' || r.outputTruncated === null))
  )
    return undefined;
  if (r.error !== undefined) {
    const e = r.error as Record<string, unknown> | null;
    if (
      !e ||
      typeof e !== 'object' ||
      typeof e.step !== 'string' ||
      typeof e.message !== 'string' ||
      !FAILURE_KINDS.has(e.kind) ||
      typeof e.exitCode !== 'number'
    )
      return undefined;
  }
  return r as unknown as ExitRecord;
}

const REQUEST_TYPES: ReadonlySet<unknown> = new Set(['start', 'signal', 'exec', 'gc', 'cgroups', 'ttyCopied']);

/** Envelope check of a zygote request: a known type and an integer request id. */
export function isZygoteRequest(m: unknown): m is ZygoteRequest {
  return (
    !!m && typeof m === 'object' && REQUEST_TYPES.has((m as { t?: unknown }).t) && isInt((m as { rid?: unknown }).rid)
  );
}
