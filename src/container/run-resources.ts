/**
 * What one run of a container holds on the host, acquired and released in one place: its etc
 * files (hostname, hosts, resolv.conf), its volumes (special ones mounted on the host, image
 * content copied up), its network endpoint, and its cgroup.
 *
 * {@link RunResources.acquire} takes them before a start and gives back what the runtime needs;
 * {@link RunResources.release} gives them back: after a failed start, after the run's exit (off
 * the waiter's path, see {@link RunResources.releaseAfterExit}), and on removal. Every release is
 * idempotent; an error while releasing is never dropped: it is thrown, or attached to the error
 * that made the release necessary (see {@link attachCleanupErrors}).
 *
 * @module
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { attachCleanupErrors, BerthError } from '../errors.js';
import type { PlanInterface } from '../runtime/plan-interface.js';
import type { UserMount } from '../runtime/plan.js';
import type { CgroupView } from '../runtime/cgroups/index.js';
import { cgroupJoin, type ContainerCore } from './context.js';
import { containerCgroupOptions } from './defaults.js';
import { labelOf, type ContainerRecord } from './record.js';
import { hostsFile, resolvConfFile, userMount, type ContainerPaths } from './spec.js';
import { assertCan } from './status.js';

/** What {@link RunResources.acquire} took for a run, in the shapes the runtime's spec takes. */
export interface AcquiredRun {
  /** The container's mounts, volumes resolved to their host directories. */
  mounts: UserMount[];
  /** Its network: interfaces to create, or the pid whose network namespace it joins. */
  net: { interfaces?: PlanInterface[]; joinNetnsPid?: number };
  /** How its init joins its cgroups, and the cgroup view it gets. */
  cgroups: { procs?: string[]; tasks?: string[]; view?: CgroupView };
  /** Settles once its cgroup exists (made while the init makes its mounts); absent without cgroups. */
  cgReady?: Promise<unknown>;
  /** Volumes whose image content the init copies in (marked populated once the run started). */
  copyUp: Set<string>;
}

/** What a release gives back (default: all of it). */
export interface ReleaseParts {
  /** The cgroup. */
  cgroup?: boolean;
  /** The network endpoint. */
  network?: boolean;
  /** The volumes (special ones unmounted when no running container uses them). */
  volumes?: boolean;
  /** The run's network namespace is gone already (its veth pair went with it). */
  linksGone?: boolean;
}

/** One error for the failures of a release: itself when there is one, an AggregateError for several. */
function releaseError(rec: ContainerRecord, errors: unknown[]): unknown {
  return errors.length === 1
    ? errors[0]
    : new AggregateError(errors, `cannot release what container ${labelOf(rec)} held`);
}

/** The resources of one engine's container runs. */
export class RunResources {
  readonly #core: ContainerCore;
  readonly #get: (ref: string) => Promise<ContainerRecord>;
  /** Releases after an exit still under way, per container. */
  readonly #cleanups = new Map<string, Promise<void>>();
  /** Runs (`id:startTime`) whose resources this engine released in full when it recorded their exit. */
  readonly #released = new Set<string>();
  /** Why the release after a run's exit failed, per container: thrown by the removal if its own release fails too. */
  readonly #failed = new Map<string, unknown>();

  /** Resources over the engine's context; `get` resolves a container (the one whose network a run joins). */
  constructor(core: ContainerCore, get: (ref: string) => Promise<ContainerRecord>) {
    this.#core = core;
    this.#get = get;
  }

  /**
   * Acquires what a run of `rec` needs, in order: etc files, volumes, network endpoint, and
   * (in the background, see {@link AcquiredRun.cgReady}) its cgroup. On a failure, what was
   * acquired is released before the error is thrown (with the release's errors attached).
   */
  async acquire(rec: ContainerRecord, p: ContainerPaths): Promise<AcquiredRun> {
    const vols = this.#core.ctx.volumes;
    const copyUp = new Set<string>();
    try {
      this.#writeEtcFiles(rec, p);
      for (const m of rec.config.mounts) {
        if (m.type !== 'volume') continue;
        await vols.acquire(m.name);
        if (!m.nocopy && !(await vols.get(m.name)).populated && vols.awaitsCopyUp(m.name)) copyUp.add(m.name);
      }
      const mounts = rec.config.mounts.map((m) =>
        userMount(
          m,
          (n) => vols.mountpoint(n),
          (n) => copyUp.has(n),
        ),
      );
      const net = await this.#attachNetwork(rec, p);
      const cg = this.#core.ctx.cgroups;
      // Once more if another process removed the shared parent cgroup in between (its last child left).
      const makeCgroup = () => cg!.create(rec.id, rec.config.resources, containerCgroupOptions(rec.config.privileged));
      // Made while the init makes its mounts; it is let into them once they exist.
      const cgReady = cg ? makeCgroup().catch(() => makeCgroup()) : undefined;
      // Its failure is reported by abort() (the start awaits it through the runtime, or not at all).
      cgReady?.catch(() => undefined);
      // v1: the init moves itself through `tasks` (no global lock, no grace period); else the zygote moves it.
      const cgroups = { ...cgroupJoin(cg, rec.id), ...(cg ? { view: cg.view() } : {}) };
      return { mounts, net, cgroups, copyUp, ...(cgReady ? { cgReady } : {}) };
    } catch (e) {
      throw await this.#releaseAfter(rec, e, { cgroup: false });
    }
  }

  /**
   * Releases what {@link acquire} took for a run that did not start, and returns the error to
   * throw: the cgroup's creation error when there was one (the start failed for want of it),
   * else `error`; the release's own errors are attached to it.
   */
  async abort(rec: ContainerRecord, run: AcquiredRun, error: unknown): Promise<unknown> {
    const cgError = await run.cgReady?.then(
      () => undefined,
      (err: unknown) => err,
    );
    return this.#releaseAfter(rec, cgError ?? error, {});
  }

  /** Marks the volumes the run's init copied image content into as populated. */
  async started(run: AcquiredRun): Promise<void> {
    for (const n of run.copyUp) await this.#core.ctx.volumes.markPopulated(n);
  }

  /**
   * Releases what `rec`'s run holds (the parts asked for), each part even when another fails;
   * throws the failures (an AggregateError when several). Idempotent.
   */
  async release(rec: ContainerRecord, parts: ReleaseParts = {}): Promise<void> {
    const errors: unknown[] = [];
    const { cgroups, networks, volumes } = this.#core.ctx;
    if (parts.cgroup !== false && cgroups) await cgroups.destroy(rec.id).catch((e: unknown) => errors.push(e));
    if (
      parts.network !== false &&
      networks &&
      !['none', 'host'].includes(rec.config.network) &&
      !rec.config.network.startsWith('container:')
    ) {
      await networks
        .releaseAttachment(rec.id, undefined, parts.linksGone ? { linksGone: true } : {})
        .catch((e: unknown) => errors.push(e));
    }
    if (parts.volumes !== false) {
      for (const m of rec.config.mounts) {
        if (m.type === 'volume') await volumes.release(m.name).catch((e: unknown) => errors.push(e));
      }
    }
    if (errors.length) throw releaseError(rec, errors);
  }

  /**
   * Releases what the run of `held` held, off the waiter's path (after this turn of the event
   * loop, which records the exit and wakes waiters: the cgroup calls are synchronous). A start or
   * a removal waits for it ({@link settled}); a failure is kept for the removal.
   */
  releaseAfterExit(held: ContainerRecord): void {
    const id = held.id;
    this.#cleanups.set(
      id,
      (async () => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        try {
          await this.release(held, { linksGone: true });
          this.#released.add(`${id}:${held.state.startTime}`);
          this.#failed.delete(id);
        } catch (e) {
          this.#failed.set(id, e);
        }
      })().finally(() => this.#cleanups.delete(id)),
    );
  }

  /** Resolves once the release after `id`'s last exit (if one is under way) is done. */
  async settled(id: string): Promise<void> {
    await this.#cleanups.get(id);
  }

  /** Resolves once every release after an exit under way is done. */
  async allSettled(): Promise<void> {
    await Promise.all([...this.#cleanups.values()]);
  }

  /**
   * Releases, for the removal of `rec`, what its last run may still hold: everything when the
   * release after its exit failed here (the error is thrown with that first failure attached when
   * it fails again); else its cgroup (unless released here already: another process ran it, or
   * it never ran, and then it is a no-op when there is nothing) and its network endpoint. Its
   * volumes were released when its exit was recorded, by whichever process saw it.
   */
  async releaseForRemoval(rec: ContainerRecord): Promise<void> {
    await this.settled(rec.id);
    const failed = this.#failed.get(rec.id);
    const key = `${rec.id}:${rec.state.startTime}`;
    try {
      if (failed !== undefined) await this.release(rec);
      else await this.release(rec, { cgroup: !this.#released.has(key), volumes: false });
    } catch (e) {
      throw failed === undefined ? e : attachCleanupErrors(e, [failed]);
    }
    this.#released.delete(key);
    this.#failed.delete(rec.id);
  }

  /** Releases `parts` of `rec` after `error`; returns `error` with the release's errors attached. */
  async #releaseAfter(rec: ContainerRecord, error: unknown, parts: ReleaseParts): Promise<unknown> {
    try {
      await this.release(rec, parts);
      return error;
    } catch (cleanup) {
      return attachCleanupErrors(error, cleanup instanceof AggregateError ? cleanup.errors : [cleanup]);
    }
  }

  /** Attaches the container to its network (bridge or user-defined); writes its hosts file. */
  async #attachNetwork(
    rec: ContainerRecord,
    p: ContainerPaths,
  ): Promise<{ interfaces?: PlanInterface[]; joinNetnsPid?: number }> {
    const c = rec.config;
    const extraHosts = c.net.extraHosts.map((h) => {
      const i = h.indexOf(':');
      return { names: [h.slice(0, i)], address: h.slice(i + 1) };
    });
    if (c.network.startsWith('container:')) {
      const other = await this.#get(c.network.slice('container:'.length));
      assertCan('join', other.state.status, labelOf(other));
      copyFileSync(this.#core.paths(other.id).hosts, p.hosts);
      copyFileSync(this.#core.paths(other.id).resolvConf, p.resolvConf);
      return { joinNetnsPid: other.state.pid };
    }
    if (c.network === 'none' || c.network === 'host') return {};
    const nets = this.#core.ctx.networks;
    if (!nets) throw new BerthError('KERNEL', 'networking is not available in this engine');
    const iface = await nets.prepareAttachment(rec.id, {
      network: c.network,
      name: rec.name,
      hostname: c.hostname,
      aliases: c.net.aliases,
      ...(c.net.ip ? { ip: c.net.ip } : {}),
      ...(c.net.mac ? { mac: c.net.mac } : {}),
      ports: c.net.ports,
      publishAll: c.net.publishAll,
      exposedPorts: c.net.exposedPorts,
    });
    writeFileSync(
      p.hosts,
      await nets.hostsFileFor(rec.id, {
        hostname: c.hostname,
        ...(c.domainname ? { domainname: c.domainname } : {}),
        extraHosts,
      }),
    );
    return { interfaces: [iface] };
  }

  #writeEtcFiles(rec: ContainerRecord, p: ContainerPaths): void {
    const c = rec.config;
    writeFileSync(p.hostname, `${c.hostname}\n`);
    writeFileSync(p.hosts, hostsFile(c.hostname, c.domainname, c.net.extraHosts));
    let host = '';
    try {
      host = readFileSync('/etc/resolv.conf', 'utf8');
    } catch (e) {
      // No resolver configured on the host: the container gets an empty file.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    writeFileSync(p.resolvConf, resolvConfFile(host, c.network !== 'host', c.net));
  }
}
