/**
 * Messages between an engine process and its zygote, over the Node IPC channel of the zygote
 * (JSON). Requests carry a `rid` echoed by the reply; exits are pushed unasked.
 *
 * ```text
 *  engine (user's process)            zygote (node --single-threaded)         init (forked child)
 *  ───────────────────────            ───────────────────────────────         ───────────────────
 *  start {rid, plan, logPath} ─────▶  pipe2 ×3; madvise(DOFORK)
 *                                     unshare(NEWPID); fork() ───────────────▶ PID 1 of a new pidns
 *                                     setns(back to own pidns)                 unshare(mnt,uts,ipc,net,cgroup)
 *                                     close child ends                         overlay, pivot_root, /proc, /dev …
 *                                     pump stdout/stderr ─▶ log file           user, caps, stdio
 *                                     error pipe: EOF ◀─────────────────────── execve (error pipe closes)
 *  ◀──────────── started {rid, pid, startTime}                                 the user's program runs
 *                                      (or: failure JSON on the error pipe ─▶ failed {rid, error})
 *                                     SIGCHLD → waitpid; logs drained
 *  ◀──────────── exit {id, exitCode, signal, finishedAt}   (+ exit file written for other processes)
 * ```
 *
 * @module
 */
import { z } from 'zod';
import type { Plan } from './plan.js';
import type { ExecPlan, InitFailure } from './init.js';

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
  /**
   * Detach the container from the engine (see `detach.ts`): this monitor program becomes its
   * parent, its output pump and its exit recorder, and it outlives the zygote.
   */
  detach?: { monitor: string };
  /**
   * The container's cgroups are still being made: the init is not let into them until a
   * {@link CgroupsReadyRequest} for this container arrives (it makes its mounts meanwhile).
   */
  cgroupsPending?: boolean;
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

/** Any request to the zygote. */
export type ZygoteRequest = StartRequest | SignalRequest | ExecRequest | GcRequest | CgroupsReadyRequest;

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
}

/** Any message from the zygote. */
export type ZygoteMessage = StartedReply | FailedReply | OkReply | ExitNotice | ExecOutputNotice | ExecExitNotice;

/** Schema of {@link ExitRecord}, for exit files read back from disk. */
export const exitRecordSchema = z.object({
  pid: z.number().int(),
  exitCode: z.number().int(),
  signal: z.number().int().optional(),
  finishedAt: z.number(),
  error: z.object({ step: z.string(), message: z.string(), kind: z.enum(['command', 'user', 'kernel', 'other']), exitCode: z.number() }).passthrough().optional(),
});

/** Envelope check of zygote requests: a type and a request id. */
export const requestEnvelope = z.object({ t: z.enum(['start', 'signal', 'exec', 'gc', 'cgroups']), rid: z.number().int() }).passthrough();
