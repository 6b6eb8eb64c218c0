/**
 * The pool of forked templates: JavaScript inits (`runTemplate` in `init.ts`) forked ahead of
 * time with the default unshare flags, so a start that takes the JavaScript path finds one ready.
 * It is filled only once a start has needed one (see {@link TemplatePool.warm}).
 *
 * @module
 */
import { cleanupAfter } from '../../errors.js';
import { close } from '../../kernel/fd.js';
import { FdSet } from './fds.js';
import type { Spawner, Template } from './spawn.js';

/** How many prepared templates the zygote keeps ready. */
const POOL_SIZE = 2;

/** The zygote's ready templates; one per zygote. */
export class TemplatePool {
  readonly #spawner: Spawner;
  /** Every pooled template not taken yet, by pid (to drop one that dies, see {@link TemplatePool.died}). */
  readonly #templates = new Map<number, Template>();
  #pool: Template[] = [];
  #poolFlags = -1;
  /** Whether a start has needed a forked template: only then is the pool kept full (see {@link TemplatePool.warm}). */
  #poolWanted = false;
  #refilling = false;

  /** A pool whose templates `spawner` forks. */
  constructor(spawner: Spawner) {
    this.#spawner = spawner;
  }

  /** A start takes the JavaScript path: from now on the pool is kept full. */
  want(): void {
    this.#poolWanted = true;
    if (this.#pool.length === 0) this.refill();
  }

  /** A ready template prepared with `flags`, taken out of the pool; undefined when there is none. */
  take(flags: number): Template | undefined {
    if (flags !== this.#poolFlags) return undefined;
    const t = this.#pool.shift();
    if (t) this.#templates.delete(t.pid);
    return t;
  }

  /** Fills the pool now, on this call's path (a settled state for measurements); once wanted. */
  fill(): void {
    while (this.#poolWanted && this.#pool.length < POOL_SIZE && this.#poolFlags >= 0) this.#pool.push(this.#fork());
  }

  /** Keeps {@link POOL_SIZE} templates of the default flags ready, off the request's path (once wanted). */
  refill(): void {
    if (this.#refilling || !this.#poolWanted) return;
    this.#refilling = true;
    setImmediate(() => {
      this.#refilling = false;
      try {
        while (this.#pool.length < POOL_SIZE) this.#pool.push(this.#fork());
      } catch {
        // Out of pids or memory: requests fork on demand and report the error.
      }
    });
  }

  /**
   * Sets the unshare flags pooled templates are prepared with. The pool is filled only once a
   * start has needed a forked template: while `berth-init` serves the starts (see
   * {@link StartRequest.init}), templates would be forked and warmed up for nothing. From the
   * first start that takes the JavaScript path on (no `berth-init`, or a plan it does not run, see
   * `nativeInitUnsupported`), {@link POOL_SIZE} templates are kept ready.
   */
  warm(unshareFlags: number): void {
    this.#poolFlags = unshareFlags;
    this.refill();
  }

  /**
   * Whether `pid` was a pooled template: one that died before it was used (its preparation
   * failed) is dropped and its fds closed.
   */
  died(pid: number): boolean {
    const tpl = this.#templates.get(pid);
    if (!tpl) return false;
    this.#templates.delete(pid);
    this.#pool = this.#pool.filter((t) => t !== tpl);
    for (const fd of [tpl.outR, tpl.errR, tpl.exR, tpl.ctrlW]) close(fd);
    return true;
  }

  #fork(): Template {
    const fds = new FdSet();
    try {
      const t = this.#spawner.forkTemplate(fds, this.#poolFlags);
      this.#templates.set(t.pid, t);
      return t;
    } catch (e) {
      throw cleanupAfter(e, () => fds.closeAll());
    }
  }
}
