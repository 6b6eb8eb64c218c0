/**
 * The zygote: a small Node process of berth's own, started once per engine as a child of the
 * user's process (not a daemon). It does nothing but start container inits on request, pump their
 * output into log files, reap them and report their exit. See `protocol.ts` for the sequence.
 *
 * A container's init is `berth-init` (`monitor/init.c`), started with posix_spawn as PID 1 of a
 * new PID namespace (`Spawner.spawnInit`), when the engine sends its path and the plan is one it runs
 * (`native-init.ts`); otherwise it is a forked template running `runInit` (`init.ts`). Templates
 * are pooled only once a start has needed one (see `warm`).
 *
 * It runs with `--single-threaded` so V8 keeps no helper threads that could hold a lock at
 * fork time, and stays off libuv's thread pool (only synchronous fs calls and pipes on epoll).
 * It dies with its engine (PDEATHSIG), and its containers die with it (their PDEATHSIG).
 *
 * The parts, each a set of functions over the shared {@link ZygoteState} (`child.ts`):
 * `spawn.ts` (making processes), `pool.ts` (ready templates), `start.ts` (a container's start),
 * `exec.ts` (an exec), `pump.ts` (output, the error pipe, the terminal handover, the start's
 * report), `reap.ts` (reaping, exit files, the end's report); `fds.ts` owns fds until they are
 * handed over.
 *
 * @module
 */
import { kill } from '../../kernel/process.js';
import { StateError } from '../../errors.js';
import type { ZygoteMessage, ZygoteRequest } from '../protocol.js';
import { closeHeld } from './fds.js';
import { TemplatePool } from './pool.js';
import { Spawner } from './spawn.js';
import { ackCgroups, start } from './start.js';
import { exec } from './exec.js';
import { maybeFinish, reap } from './reap.js';
import type { Child, ZygoteState } from './child.js';

/** The zygote's state and request handling; one instance per zygote process. */
export class Zygote {
  readonly #z: ZygoteState;

  /** Creates the zygote; `send` delivers messages to the engine. */
  constructor(send: (m: ZygoteMessage) => void) {
    const spawner = new Spawner();
    const z: ZygoteState = {
      send,
      spawner,
      pool: new TemplatePool(spawner),
      byPid: new Map<number, Child>(),
      byId: new Map<string, Child>(),
      byMonitor: new Map<number, Child>(),
      execTty: new Map<string, Child>(),
      finish: (child) => maybeFinish(z, child),
    };
    this.#z = z;
  }

  /** Handles one request from the engine. */
  handle(req: ZygoteRequest): void {
    const z = this.#z;
    if (req.t === 'start') start(z, req);
    else if (req.t === 'cgroups') {
      const c = z.byId.get(req.id);
      if (c?.cgroupAck) ackCgroups(c, req.ok);
      z.send({ t: 'ok', rid: req.rid });
    } else if (req.t === 'exec') exec(z, req);
    else if (req.t === 'ttyCopied') {
      const c = z.execTty.get(req.id);
      if (c) {
        c.ttyUncopied = false;
        z.execTty.delete(req.id);
        if (c.done) closeHeld(c, 'ttyFd');
      }
      z.send({ t: 'ok', rid: req.rid });
    } else if (req.t === 'gc') {
      // A settled state for measurements: the pool full, then a full collection.
      z.pool.fill();
      (globalThis as { gc?: () => void }).gc?.();
      z.send({ t: 'ok', rid: req.rid });
    } else if (req.t === 'signal') {
      const c = z.byId.get(req.id);
      try {
        if (!c || c.status)
          throw new StateError(
            c ? 'exited' : 'unknown',
            'signal',
            `container ${req.id} has no running process`,
            'NOT_RUNNING',
          );
        kill(c.pid, req.signal);
        z.send({ t: 'ok', rid: req.rid });
      } catch (e) {
        z.send({
          t: 'failed',
          rid: req.rid,
          error: { step: 'signal', message: (e as Error).message, kind: 'other', exitCode: 1 },
        });
      }
    }
  }

  /** Reaps every exited child (called on SIGCHLD). */
  reap(): void {
    reap(this.#z);
  }

  /**
   * Sets the unshare flags pooled templates are prepared with (see `TemplatePool.warm`): the
   * pool is filled only once a start has needed a forked template.
   */
  warm(unshareFlags: number): void {
    this.#z.pool.warm(unshareFlags);
  }

  /** Number of containers whose process has not been reported as ended yet. */
  get running(): number {
    return this.#z.byPid.size;
  }
}
