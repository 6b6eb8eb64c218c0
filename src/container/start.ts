/**
 * Starting a container, as `docker start`: under its lock, what the run holds acquired, its
 * program started by the runtime, its record made running (or its start failure recorded and
 * thrown), its health checks watched.
 *
 * @module
 */
import { mkdirSync, rmSync } from 'node:fs';
import { BerthError, CommandError } from '../errors.js';
import { withLock } from '../state/lock.js';
import { fsError, isNoSpace } from '../state/fs-error.js';
import { buildPlan } from '../runtime/plan.js';
import { StartFailure } from '../runtime/zygote-client.js';
import { currentBootId, processStartTime } from '../runtime/proc.js';
import { CONTAINER_PLAN_DEFAULTS } from './defaults.js';
import type { ContainerCore } from './context.js';
import { initialState, labelOf, type ContainerRecord } from './record.js';
import { lowerDirs, runtimeSpec, type ContainerPaths } from './spec.js';
import { can, stateError } from './status.js';
import { takePendingAttaches, withStdin } from './start-stdin.js';
import { attachCleanupErrors } from '../errors.js';
import type { RunResources } from './run-resources.js';
import type { RunStates } from './run-state.js';
import type { Supervisor } from './supervise.js';

/** What a start needs from the container manager besides {@link ContainerCore}. */
export interface StartSteps {
  /** What runs hold: acquired before the start, released when it fails. */
  resources: RunResources;
  /** The runs' status, refreshed from the kernel before starting. */
  runs: RunStates;
  /** Watches the health of the started container. */
  supervisor: Supervisor;
  /** Removes a container (an auto-removed one whose start failed). */
  remove(ref: string, options: { force?: boolean }): Promise<void>;
}

/** What a start is given beyond the container's record. */
export interface StartIo {
  /** The read end (this process's fd) of a pipe that becomes the program's stdin; the caller keeps and closes it. */
  stdinFd?: number;
}

/**
 * Starts a created or exited container; resolves once its program runs. With `io.stdinFd` its
 * program's stdin is that pipe (a start of a running container then throws INVALID_STATE rather
 * than doing nothing); else an attachment waiting for this start gives its own (`start-stdin.ts`).
 */
export async function startContainer(
  core: ContainerCore,
  steps: StartSteps,
  first: ContainerRecord,
  io: StartIo = {},
): Promise<ContainerRecord> {
  const p = core.paths(first.id);
  return startRun(core, steps, first, p, io).catch((e: unknown) => {
    throw isNoSpace(e) ? fsError(e, 'write', p.runDir) : e;
  });
}

/** The start itself, under the container's lock (see {@link startContainer}). */
async function startRun(
  core: ContainerCore,
  steps: StartSteps,
  first: ContainerRecord,
  p: ContainerPaths,
  io: StartIo,
): Promise<ContainerRecord> {
  return withLock(p.lock, async () => {
    const rec = await steps.runs.refresh((await core.records.get(first.id)) ?? first);
    // Starting a running container is a no-op, as `docker start` (not with input for a new run).
    if (!can('start', rec.state.status)) {
      if (io.stdinFd !== undefined) throw stateError('start', rec.state.status, labelOf(rec));
      return rec;
    }
    const attached = takePendingAttaches(rec.id);
    const stdinFd = io.stdinFd ?? attached.stdinFd;
    let updated: ContainerRecord | undefined;
    try {
      updated = await startLocked(core, steps, rec, p, stdinFd);
      return updated;
    } finally {
      attached.settle(updated);
    }
  });
}

/** The start of `rec`, under its lock (see {@link startContainer}). */
async function startLocked(
  core: ContainerCore,
  steps: StartSteps,
  rec: ContainerRecord,
  p: ContainerPaths,
  stdinFd: number | undefined,
): Promise<ContainerRecord> {
  await steps.resources.settled(rec.id);
  mkdirSync(p.runDir, { recursive: true, mode: 0o700 });
  mkdirSync(p.rootfs, { recursive: true, mode: 0o700 });
  rmSync(p.exit, { force: true });
  const zygote = core.ctx.zygote;
  const run = await steps.resources.acquire(rec, p);
  let started;
  try {
    started = await zygote.start(
      withStdin(
        buildPlan(
          runtimeSpec(
            rec,
            p,
            lowerDirs(rec, (d) => core.ctx.layerDir(d)),
            run.mounts,
            run.cgroups,
            run.net,
          ),
          CONTAINER_PLAN_DEFAULTS,
        ),
        stdinFd,
      ),
      p.log,
      p.exit,
      {
        detach: rec.config.detach,
        log: rec.config.log,
        ...(run.cgReady ? { cgroups: run.cgReady } : {}),
        ...(rec.config.timeout !== null ? { timeout: rec.config.timeout } : {}),
        ...(stdinFd !== undefined ? { stdinFd } : {}),
      },
    );
  } catch (e) {
    const error = await steps.resources.abort(rec, run, e);
    if (error !== e || !(e instanceof StartFailure)) throw error;
    const f = e.failure;
    await core.records.update(rec.id, (r) => ({
      ...r,
      state: { ...r.state, exitCode: f.exitCode, error: f.message },
    }));
    // The errors of the release abort() made, attached to the start failure, go with the error thrown.
    const cleanup = e.cause === undefined ? {} : { cause: e.cause };
    const failure =
      f.kind === 'command'
        ? new CommandError(
            rec.path,
            f.exitCode,
            `cannot start container ${rec.name || rec.id.slice(0, 12)}: ${f.message}`,
            cleanup,
          )
        : new BerthError(
            f.kind === 'user' ? 'INVALID_ARGUMENT' : 'KERNEL',
            `cannot start container ${rec.name || rec.id.slice(0, 12)}: ${f.message}`,
            cleanup,
          );
    if (rec.config.autoRemove)
      await steps.remove(rec.id, { force: true }).catch((removal: unknown) => attachCleanupErrors(failure, [removal]));
    throw failure;
  }
  await steps.resources.started(run);
  // A detached container's exit is recorded (and its stdio held) by its monitor: the run's owner.
  const zpid = started.holderPid ?? zygote.pid ?? 0;
  const zstart = processStartTime(zpid) ?? 0;
  const updated = await core.records.update(rec.id, (r) => ({
    ...r,
    state: {
      ...initialState(),
      restartCount: r.state.restartCount,
      status: 'running',
      pid: started.pid,
      startTime: started.startTime,
      bootId: currentBootId(),
      ownerPid: zpid,
      ownerStart: zstart,
      startedAt: new Date().toISOString(),
      stdio:
        started.stdinFd !== undefined || started.ttyFd !== undefined
          ? {
              ...(started.stdinFd !== undefined ? { stdinFd: started.stdinFd } : {}),
              ...(started.ttyFd !== undefined ? { ttyFd: started.ttyFd } : {}),
            }
          : null,
    },
  }));
  await core.event('start', updated);
  steps.supervisor.watchHealth(updated);
  steps.supervisor.watchTimeout(updated);
  return updated;
}
