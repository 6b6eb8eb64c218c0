/**
 * Processes run in a running container, as `docker exec`: the exec plan built from the
 * container's config, its start through the runtime, its events, and signalling it safely.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, CommandError } from '../errors.js';
import { callStop, type CallStop } from './call-stop.js';
import { StartFailure } from '../runtime/zygote-client.js';
import { capabilityMask } from '../runtime/capabilities.js';
import type { ExecPlan } from '../runtime/init.js';
import { closeFd, signalProcess, SIGNALS, stdinPipe } from '../runtime/host.js';
import type { ExitRecord } from '../runtime/protocol.js';
import { cgroupJoin, type ContainerCore } from './context.js';
import { labelOf, type ContainerRecord } from './record.js';
import { mergeEnv, processLimits } from './spec.js';
import { seccompFilter } from './seccomp.js';
import { CappedOutput, type KeepPart } from './output-cap.js';
import { assertCan, stateError } from './status.js';

/** Options of `exec`. */
export interface ExecOptions {
  /** Environment merged over the container's. */
  env?: Record<string, string | number | boolean> | string[];
  /** `user[:group]`; default the container's user. */
  user?: string;
  /** Working directory; default the container's. */
  workdir?: string;
  /** Run it on a new terminal of this size (stdout and stderr are then one stream). */
  terminal?: { cols: number; rows: number };
  /** Give it a stdin pipe (without a terminal); default /dev/null. */
  stdin?: boolean;
}

/** What {@link runExec} adds to {@link ExecOptions}: input, and bounds on what it collects. */
export interface RunExecOptions extends ExecOptions {
  /** Written to the process's stdin, which is then closed (a pipe; without it, /dev/null). */
  input?: string | Buffer | AsyncIterable<Uint8Array>;
  /** At most this many bytes of each stream are kept; the rest is dropped and `truncated` says so. */
  maxOutput?: number;
  /** Which bytes `maxOutput` keeps: the first (`head`, default) or the last (`tail`). */
  keep?: KeepPart;
  /** Kills the process (SIGKILL) and rejects with `ABORTED` when it fires. */
  signal?: AbortSignal;
  /** Kills the process (SIGKILL) and rejects with `TIMEOUT` after this many milliseconds. */
  timeout?: number;
}

/** A process {@link ContainerService.startExec} started; the caller owns the fds. */
export interface StartedExec {
  /** Host pid. */
  pid: number;
  /** Its start time (clock ticks since boot), to signal it safely. */
  startTime: number;
  /** Resolves when it has ended and its output is delivered. */
  exited: Promise<ExitRecord>;
  /** This process's copy of its terminal's master (input, resizing). */
  tty?: number;
  /** The write end of its stdin pipe. */
  stdin?: number;
}

/** What `exec` resolves with. */
export interface ExecResult {
  /** Exit code (128 + n for a signal). */
  exitCode: number;
  /** Everything the process wrote to stdout, as UTF-8 text. */
  stdout: string;
  /** Everything it wrote to stderr, as UTF-8 text. */
  stderr: string;
  /** With `maxOutput`: whether each stream was cut to it. */
  truncated?: { stdout: boolean; stderr: boolean };
}

/** What an exec's (single-threaded) child writes `0` to: v1 `tasks` files (no global lock), else `cgroup.procs`. */
function execCgroupFiles(core: ContainerCore, id: string): string[] {
  const how = cgroupJoin(core.ctx.cgroups, id);
  return how.tasks ?? how.procs;
}

/**
 * Runs `command` in the running container `rec` to its end, collecting its output (see
 * {@link startExec}); with a terminal, all output is in `stdout`.
 */
export async function runExec(
  core: ContainerCore,
  rec: ContainerRecord,
  command: string[],
  opts: RunExecOptions,
): Promise<ExecResult> {
  const { input, maxOutput, keep, signal, timeout, ...exec } = opts;
  const stop = callStop(signal, timeout);
  const what = `exec ${JSON.stringify(command.join(' '))}`;
  stop.throwIfStopped(what);
  const out = new CappedOutput(maxOutput, keep);
  const err = new CappedOutput(maxOutput, keep);
  const withInput = input !== undefined && !exec.terminal;
  const running = await startExec(core, rec, command, { ...exec, stdin: withInput }, (stream, data) =>
    (stream === 'stdout' ? out : err).push(data),
  );
  try {
    // The write end goes to the stream, which closes it at the end (the process then sees EOF); a
    // process that exits without reading ends the write with EPIPE, which is not an exec failure.
    const feeding = withInput && running.stdin !== undefined ? feedStdin(running.stdin, input) : Promise.resolve();
    const status = await killedWhen(running, stop, what);
    await feeding;
    return {
      exitCode: status.exitCode,
      stdout: out.text(),
      stderr: err.text(),
      ...(maxOutput === undefined ? {} : { truncated: { stdout: out.truncated, stderr: err.truncated } }),
    };
  } finally {
    if (running.tty !== undefined) closeFd(running.tty);
  }
}

/**
 * Waits for the exec's end; when `stop` fires first (also while it was starting), kills it
 * (SIGKILL), waits for it to be gone, and rejects with `ABORTED` or `TIMEOUT` naming `what`.
 */
export async function killedWhen(running: StartedExec, stop: CallStop, what: string): Promise<ExitRecord> {
  if (stop.signal === undefined) return running.exited;
  const kill = (): void => signalProcess(running.pid, running.startTime, SIGNALS.SIGKILL!);
  stop.signal.addEventListener('abort', kill, { once: true });
  if (stop.signal.aborted) kill(); // fired while it started: no event comes any more
  try {
    const status = await running.exited;
    stop.throwIfStopped(`${what} (killed)`);
    return status;
  } finally {
    stop.signal.removeEventListener('abort', kill);
  }
}

/** Writes `input` to the pipe `fd` and closes it; a reader gone (EPIPE) ends the write quietly. */
async function feedStdin(fd: number, input: string | Buffer | AsyncIterable<Uint8Array>): Promise<void> {
  const sink = fs.createWriteStream('', { fd, autoClose: true });
  const source =
    typeof input === 'string' || Buffer.isBuffer(input) ? Readable.from([Buffer.from(input)]) : Readable.from(input);
  try {
    await pipeline(source, sink);
  } catch (e) {
    // The process exited (or closed its stdin) before reading everything: what it read is its business.
    if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
  }
}

/**
 * Starts `command` in the running container `rec` and resolves once it runs, as `docker exec -i`
 * (with `stdin`) or `-it` (with `terminal`); its output goes to `onOutput` as it comes. Throws the
 * state error when `rec` does not run, `COMMAND_NOT_FOUND` when the command cannot be executed.
 */
export async function startExec(
  core: ContainerCore,
  rec: ContainerRecord,
  command: string[],
  opts: ExecOptions,
  onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void,
): Promise<StartedExec> {
  assertCan('exec', rec.state.status, labelOf(rec));
  const c = rec.config;
  const seccomp = seccompFilter(c.seccomp, c.privileged, c.capabilities);
  const plan: ExecPlan = {
    id: randomBytes(16).toString('hex'),
    targetPid: rec.state.pid,
    targetStartTime: rec.state.startTime,
    process: {
      args: command,
      env: mergeEnv(c.env, opts.env),
      cwd: opts.workdir ?? c.workdir,
      user: opts.user ?? c.user,
      noNewPrivileges: c.noNewPrivileges,
      capabilities: c.capabilities,
      ...(opts.terminal ? { terminal: opts.terminal } : {}),
      ...processLimits(c),
      ...(seccomp ? { seccomp } : {}),
    },
    capabilityMask: capabilityMask(c.capabilities).toString(),
    cgroupProcs: execCgroupFiles(core, rec.id),
  };
  const pipe = opts.stdin && !opts.terminal ? stdinPipe() : undefined;
  try {
    const running = await core.ctx.zygote.exec(plan, onOutput, pipe ? { stdinFd: pipe[0] } : {});
    // Docker's exec events (it creates and starts an exec in two calls; here they are one).
    const execAttrs = { execID: plan.id, command: command.join(' ') };
    // The exec runs already: an event that cannot be written (a full disk) does not undo it.
    await core.event('exec_create', rec, execAttrs).catch(() => undefined);
    await core.event('exec_start', rec, execAttrs).catch(() => undefined);
    // The program was found, but the kernel may still refuse it (a bad binary format).
    const exited = running.exited.then(async (s) => {
      await core.event('exec_die', rec, { ...execAttrs, exitCode: String(s.exitCode) }).catch(() => undefined);
      if (s.error?.kind === 'command')
        throw new CommandError(
          command[0] ?? '',
          s.exitCode,
          `cannot exec in container ${labelOf(rec)}: ${s.error.message}`,
        );
      return s;
    });
    return { ...running, exited, ...(pipe ? { stdin: pipe[1] } : {}) };
  } catch (e) {
    if (pipe) closeFd(pipe[1]);
    if (!(e instanceof StartFailure)) throw e;
    const f = e.failure;
    if (f.kind === 'command')
      throw new CommandError(command[0] ?? '', f.exitCode, `cannot exec in container ${labelOf(rec)}: ${f.message}`);
    if (f.step === 'join') throw stateError('exec', 'exited', labelOf(rec), { cause: e });
    throw new BerthError(
      f.kind === 'user' ? 'INVALID_ARGUMENT' : 'KERNEL',
      `cannot exec in container ${labelOf(rec)}: ${f.message}`,
    );
  } finally {
    // The zygote has its own copy of the read end by now.
    if (pipe) closeFd(pipe[0]);
  }
}
