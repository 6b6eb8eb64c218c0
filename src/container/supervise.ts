/**
 * What watches a container while it runs, in the engine that started it: its health check, its
 * run time limit and its restart policy.
 *
 * @module
 */
import { signalProcess, SIGNALS } from '../runtime/host.js';
import type { ContainerCore } from './context.js';
import type { ExecResult } from './exec.js';
import type { ContainerRecord } from './record.js';
import { isActive } from './status.js';

/** Health checks, run time limits and restart policies of one engine's containers. */
export class Supervisor {
  readonly #core: ContainerCore;
  readonly #exec: (id: string, command: string[]) => Promise<ExecResult>;
  readonly #start: (id: string) => Promise<unknown>;

  /** A supervisor that runs health checks with `exec` and restarts containers with `start`. */
  constructor(
    core: ContainerCore,
    exec: (id: string, command: string[]) => Promise<ExecResult>,
    start: (id: string) => Promise<unknown>,
  ) {
    this.#core = core;
    this.#exec = exec;
    this.#start = start;
  }

  /**
   * Runs the container's health check every `interval` while it runs, in the engine that started
   * it (timers do not keep the process alive): `starting` until the first result, `healthy` after
   * a success, `unhealthy` after `retries` failures in a row (failures in the start period do not
   * count). Each change is a `health_status: <status>` event; the last 5 results are kept.
   */
  watchHealth(rec: ContainerRecord): void {
    const hc = rec.config.healthcheck;
    if (!hc) return;
    const pid = rec.state.pid;
    const started = Date.now();
    const args =
      hc.test[0] === 'CMD-SHELL'
        ? ['/bin/sh', '-c', hc.test.slice(1).join(' ')]
        : hc.test[0] === 'CMD'
          ? hc.test.slice(1)
          : hc.test;
    const tick = async (): Promise<boolean> => {
      const now = await this.#core.records.get(rec.id);
      if (!now || now.state.pid !== pid || !isActive(now.state.status)) return false;
      if (now.state.status === 'paused') return true;
      const begin = new Date();
      let exitCode = -1;
      let output = '';
      let timer: NodeJS.Timeout | undefined;
      try {
        const r = await Promise.race([
          this.#exec(rec.id, args),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`health check timed out after ${hc.timeout} ms`)), hc.timeout);
          }),
        ]);
        exitCode = r.exitCode;
        output = `${r.stdout}${r.stderr}`.slice(0, 4096);
      } catch (e) {
        output = e instanceof Error ? e.message : String(e);
      } finally {
        clearTimeout(timer);
      }
      const inStartPeriod = Date.now() - started < hc.startPeriod;
      let before = '';
      const next = await this.#core.records.update(rec.id, (r) => {
        if (r.state.pid !== pid) return r;
        const h = r.state.health;
        before = h.status;
        const log = [...h.log, { start: begin.toISOString(), end: new Date().toISOString(), exitCode, output }].slice(
          -5,
        );
        let { status, failingStreak } = h;
        if (exitCode === 0) {
          status = 'healthy';
          failingStreak = 0;
        } else if (!inStartPeriod) {
          failingStreak++;
          if (failingStreak >= hc.retries) status = 'unhealthy';
        }
        return { ...r, state: { ...r.state, health: { status, failingStreak, log } } };
      });
      if (next.state.health.status !== before)
        await this.#core.event(`health_status: ${next.state.health.status}`, next);
      return true;
    };
    const schedule = () => {
      setTimeout(() => {
        void tick().then(
          (again) => (again ? schedule() : undefined),
          () => schedule(),
        );
      }, hc.interval).unref();
    };
    void this.#core.records
      .update(rec.id, (r) =>
        r.state.pid === pid
          ? { ...r, state: { ...r.state, health: { status: 'starting', failingStreak: 0, log: [] } } }
          : r,
      )
      .then(schedule, () => undefined);
  }

  /**
   * The run time limit (`config.timeout`, ms from this start), in the engine that started the
   * run (the timer does not keep the process alive; the run dies with its owner anyway): when it
   * passes with the same run still going, the record says `timedOut`, a `timeout` event is
   * appended, and every process of the container is SIGKILLed through its cgroup (PID 1 alone on
   * a machine without cgroups, which ends its PID namespace). The exit (137) and `die` follow as
   * for any exit, and the restart policy treats it as any other exit. A detached container's
   * limit is its monitor's (`monitor/monitor.c`), which holds after this process is gone: it
   * SIGKILLs the run's PID 1 (and so its whole PID namespace) and writes `timedOut` in its exit
   * file; whoever records that exit marks the record and appends the `timeout` event (a detached
   * container paused on cgroup v1 then dies when it is unpaused: v1's freezer holds the signal).
   */
  watchTimeout(rec: ContainerRecord): void {
    const ms = rec.config.timeout;
    if (ms === null || rec.config.detach) return;
    const { pid, startTime } = rec.state;
    setTimeout(() => {
      void this.#timeUp(rec.id, pid, startTime).catch(() => {
        // Nobody awaits a timer: a kill that failed leaves the run going, as `inspect()` shows.
      });
    }, ms).unref();
  }

  async #timeUp(id: string, pid: number, startTime: number): Promise<void> {
    const now = await this.#core.records.get(id);
    if (!now || now.state.pid !== pid || !isActive(now.state.status)) return;
    const marked = await this.#core.records.update(id, (r) =>
      r.state.pid === pid ? { ...r, state: { ...r.state, timedOut: true } } : r,
    );
    await this.#core.event('timeout', marked);
    if (this.#core.ctx.cgroups) await this.#core.ctx.cgroups.killAll(id);
    else signalProcess(pid, startTime, SIGNALS.SIGKILL!);
  }

  /**
   * Docker's restart policies, in the engine that owns the container: restarts it after an exit
   * unless it was stopped through berth, with delays doubling from 100 ms (reset after 10 s up).
   */
  async applyRestartPolicy(rec: ContainerRecord): Promise<void> {
    const policy = rec.config.restart;
    if (policy === 'no' || rec.state.manualStop || rec.config.autoRemove) return;
    const [kind, max] = policy.split(':');
    if (
      kind === 'on-failure' &&
      (rec.state.exitCode === 0 || (max !== undefined && rec.state.restartCount >= Number(max)))
    )
      return;
    const ranFor =
      rec.state.startedAt && rec.state.finishedAt
        ? Date.parse(rec.state.finishedAt) - Date.parse(rec.state.startedAt)
        : 0;
    const count = ranFor > 10_000 ? 0 : rec.state.restartCount;
    const delay = Math.min(100 * 2 ** count, 60_000);
    const waiting = await this.#core.records.update(rec.id, (r) => ({
      ...r,
      state: { ...r.state, status: 'restarting', restartCount: r.state.restartCount + 1 },
    }));
    await this.#core.event('restart', waiting);
    const release = this.#core.ctx.zygote.hold();
    setTimeout(() => {
      release();
      void (async () => {
        const now = await this.#core.records.get(rec.id);
        if (!now || now.state.status !== 'restarting' || now.state.manualStop) return;
        await this.#core.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, status: 'exited' } }));
        await this.#start(rec.id);
      })().catch(() => {
        // Nobody awaits a timer: a restart that fails leaves the container exited, with the
        // start's failure in its record (`state.error`, see ContainerService.start).
      });
    }, delay);
  }
}
