/**
 * The `{ signal, timeout }` of the `Container` handle's calls that make or start something —
 * `Container.run`, `container.start`, `container.spawn` — and what a stop undoes:
 *
 * ```text
 * run:   create (pull if missing) ─▶ start ─▶ waitFor        stopped: the container is removed
 * start:                             start ─▶ waitFor        stopped: the container is stopped
 * spawn:                             start ─▶ exited         stopped: the process is killed
 * ```
 *
 * Each rejects with `ABORTED` (the signal's reason as cause) or `TIMEOUT` through the one
 * {@link underStop} / {@link callStop} of `call-stop.ts`. A `waitFor` that fails by itself
 * (its own `timeout`, the container stopping) keeps its own error and its log lines.
 *
 * @module
 */
import { attachCleanupErrors } from '../errors.js';
import { callStop, underStop, type StopOptions } from './call-stop.js';
import { killedWhen, type ExecOptions, type StartedExec } from './exec.js';
import type { ExitRecord } from '../runtime/protocol.js';
import type { ContainerService } from './service.js';
import { startWithInput, type RunInput } from './start-io.js';
import { waitForReady, type WaitForOptions } from './wait-for.js';

/** The options of `start` and of the start part of `run`, validated. */
export interface StartCallOptions extends StopOptions {
  /** See {@link WaitForOptions}. */
  waitFor?: WaitForOptions | undefined;
  /** What the program reads on its stdin (see `start-io.ts`). */
  input?: RunInput | undefined;
}

const notFound = (e: unknown): boolean => (e as { code?: string }).code === 'CONTAINER_NOT_FOUND';

/**
 * Starts `ref` and waits for `waitFor`; when `signal` fires after the start began, stops the
 * container this call started (SIGKILL at once; its cgroup and mounts released) and rejects with
 * the signal's reason or what the start threw. A container already gone (auto-removed) is what
 * stopping wanted; one that was running before the call is left running.
 */
async function startUntil(
  svc: ContainerService,
  ref: string,
  { waitFor, input }: StartCallOptions,
  signal: AbortSignal | undefined,
): Promise<void> {
  signal?.throwIfAborted(); // fired while run created it: never started
  const since = Date.now();
  const { state } = await (input === undefined ? svc.start(ref) : startWithInput(svc, ref, input));
  // Starting a running container is a no-op: a stop then leaves it running, as it was.
  const startedHere = state.startedAt !== null && Date.parse(state.startedAt) >= since;
  try {
    signal?.throwIfAborted();
    if (waitFor) await waitForReady(svc, ref, waitFor, since, signal);
  } catch (e) {
    if (signal?.aborted && startedHere)
      await svc.stop(ref, 0).catch((stopping: unknown) => {
        if (!notFound(stopping)) attachCleanupErrors(e, [stopping]);
      });
    throw e;
  }
}

/**
 * `container.start()`: an already-stopped call starts nothing; stopped while starting or waiting,
 * the container is left stopped (running, when it already ran before the call).
 */
export function startWithin(svc: ContainerService, ref: string, o: StartCallOptions): Promise<void> {
  return underStop(`starting container ${ref}`, o, (signal) => startUntil(svc, ref, o, signal));
}

/**
 * `Container.run()`: creates with `create` (which pulls a missing image under the same signal),
 * starts and waits; resolves with the new container's id. `what` names the run in a stop's
 * error. A failure or a stop after the create removes the container and its anonymous volumes;
 * an already-stopped call creates nothing.
 */
export function runWithin(
  svc: ContainerService,
  what: string,
  create: (signal: AbortSignal | undefined) => Promise<string>,
  o: StartCallOptions,
): Promise<string> {
  return underStop(`running a container of ${what}`, o, async (signal) => {
    const id = await create(signal);
    try {
      await startUntil(svc, id, o, signal);
    } catch (e) {
      await svc.remove(id, { force: true, volumes: true }).catch((removal: unknown) => {
        // Removed already (an auto-removed container) is what was wanted.
        if (!notFound(removal)) attachCleanupErrors(e, [removal]);
      });
      throw e;
    }
    return id;
  });
}

/**
 * What `container.spawn()` gives its `ContainerProcess` (a `ProcessStarter`): the stop's clock starts now; an
 * already-stopped call starts nothing (`exited` rejects); once it fires the process is killed
 * (SIGKILL) and `exited` rejects with `ABORTED` or `TIMEOUT`, as `exec` does.
 */
export function spawnStarter(
  svc: ContainerService,
  ref: string,
  command: string[],
  exec: ExecOptions,
  o: StopOptions,
): {
  start(onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void): Promise<StartedExec>;
  signal(pid: number, startTime: number, signal: number): void;
  wait(running: StartedExec): Promise<ExitRecord>;
} {
  const stop = callStop(o.signal, o.timeout);
  const what = `process ${JSON.stringify(command.join(' '))} in container ${ref}`;
  return {
    start: async (onOutput) => {
      stop.throwIfStopped(what);
      return svc.startExec(ref, command, exec, onOutput);
    },
    signal: (pid, startTime, signal) => svc.signalExec(pid, startTime, signal),
    wait: (running) => killedWhen(running, stop, what),
  };
}
