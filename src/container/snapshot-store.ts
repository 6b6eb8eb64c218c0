/**
 * Snapshots: a container's file system frozen as an overlay layer of its own, from which new
 * containers start in O(1) of its size.
 *
 * ```text
 * <root>/snapshots/lock                          shared by a fork's create, exclusive for a removal
 * <root>/snapshots/<hex>/snapshot.json           the record (never changes)
 * <root>/snapshots/<hex>/fs/                     the layer: a copy of the container's upper dir
 * <root>/snapshots/.staging-<owner>-<hex>/       a snapshot being made (its maker's tag: swept once it died)
 * <root>/snapshots/.removing-<owner>-<hex>/      a snapshot being deleted (likewise)
 * ```
 *
 * - **Take** ({@link SnapshotStore.take}): the container's upper dir is copied (`fs/clone-tree.ts`:
 *   owners, modes, xattrs, hardlinks, whiteouts and opaque directories, times; reflinks where the
 *   file system has them) into a staging directory, with the record, then renamed into place: a
 *   snapshot is there whole or not at all. A running container is paused (cgroup freezer) for
 *   the copy and unpaused after, so the copy is one consistent moment; a paused one stays paused;
 *   a stopped or created one is copied under its lock (it cannot start meanwhile). O(size).
 * - **Fork** ({@link SnapshotStore.resolved}): a container whose layers are the snapshot's layer
 *   over the layers the source sat on, with a fresh, empty upper dir: nothing is copied. Its
 *   record names the layer `snapshot:<hex>` (see `record.ts`); the engine's `layerDir` resolves it
 *   here. Its defaults (command, entrypoint, environment, working directory, user, stop signal,
 *   health check, exposed ports, volumes) are the source's settings, as `docker commit` records
 *   them; its image id is the source's.
 * - **Lifetime**: the layers below a snapshot stay in the layer store while it exists (the image
 *   store asks {@link SnapshotStore.layersInUse}, as it asks the build cache), so removing or
 *   pruning the source's image never breaks it. {@link SnapshotStore.remove} refuses (`IN_USE`)
 *   while a container or another snapshot sits on it; `force` removes those containers first
 *   (killing running ones), never other snapshots. Nothing of a removed snapshot stays on disk.
 * - Volumes are not part of a snapshot (as `docker commit` leaves them out): a fork gets its own,
 *   as any new container does.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { BerthError, ConflictError, InvalidArgumentError, NotFoundError, attachCleanupErrors } from '../errors.js';
import { acquireLock, withLock, withSharedLock } from '../state/lock.js';
import { removeTree } from '../state/remove-tree.js';
import { readdirIfExists } from '../state/fs-error.js';
import { ownerIsDead, ownerTag } from '../runtime/proc.js';
import { SIGNALS } from '../runtime/host.js';
import { cleanupErrors } from './cleanup.js';
import { parseOptions } from './options.js';
import { cloneItems } from './fs/clone-tree.js';
import { mountPoints } from './fs/index.js';
import { walkUpper } from './fs/union.js';
import { isLayerId, labelOf, SNAPSHOT_LAYER, type ContainerRecord } from './record.js';
import { isActive } from './status.js';
import type { ResolvedImage } from './context.js';
import type { ImageRunConfig } from './spec.js';
import type { ContainerService } from './service.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** Schema of {@link ImageRunConfig} as a snapshot records it. */
const runConfigSchema: z.ZodType<ImageRunConfig> = z.object({
  cmd: z.array(z.string()).nullable().optional(),
  entrypoint: z.array(z.string()).nullable().optional(),
  env: z.array(z.string()).nullable().optional(),
  workdir: z.string().nullable().optional(),
  user: z.string().nullable().optional(),
  stopSignal: z.string().nullable().optional(),
  volumes: z.array(z.string()).nullable().optional(),
  exposedPorts: z.array(z.string()).nullable().optional(),
  healthcheck: z
    .object({
      test: z.array(z.string()),
      interval: z.number().optional(),
      timeout: z.number().optional(),
      retries: z.number().optional(),
      startPeriod: z.number().optional(),
    })
    .nullable()
    .optional(),
});

/** Schema of a snapshot's record (`snapshot.json`), checked on every read. */
export const snapshotRecordSchema = z.object({
  /** The snapshot's id (64 hex); its layer is `snapshot:<id>`. */
  id: z.string().regex(HEX64),
  /** When it was taken (RFC 3339). */
  created: z.string(),
  /** The id of the container it was taken from. */
  container: z.string().regex(HEX64),
  /** That container's name, when it had one. */
  containerName: z.string(),
  /** The source's image reference, as its record holds it. */
  image: z.string(),
  /** The source's image id: a fork's image id. */
  imageId: z.string(),
  /** A fork's defaults: the source's settings (see the module). */
  config: runConfigSchema,
  /** The layers the snapshot's layer sits on, topmost first (diffIDs, or a snapshot's layer). */
  layers: z.array(z.string().refine(isLayerId, 'expected a layer id')),
  /** The snapshot's labels. */
  labels: z.record(z.string(), z.string()),
  /** Bytes of file content in the snapshot's layer. */
  size: z.number().int().nonnegative(),
});

/** A snapshot's record. */
export type SnapshotRecord = z.infer<typeof snapshotRecordSchema>;

/** Options of {@link SnapshotStore.take}, checked. */
export interface TakeSnapshotOptions {
  /** Labels of the snapshot. */
  labels?: Record<string, string>;
}

/** Schema of {@link TakeSnapshotOptions}. */
export const takeSnapshotSchema = z.strictObject({ labels: z.record(z.string(), z.string()).optional() });

/** What the store needs from the engine. */
export interface SnapshotStoreContext {
  /** The engine's state root. */
  root: string;
  /** The engine's container manager. */
  containers(): ContainerService;
  /** The directory of any layer a record names (diffID or snapshot layer). */
  layerDir(id: string): string;
  /** Deletes those of the layers `diffIds` nothing uses any more (once a snapshot that kept them is gone). */
  releaseLayers(diffIds: string[]): Promise<void>;
}

/** The layer name of snapshot `id`. */
export function snapshotLayer(id: string): string {
  return `snapshot:${id}`;
}

/**
 * A fork's defaults, from the source's settings as `docker commit` takes them: command,
 * entrypoint, environment (without the `HOSTNAME` the source was given), working directory, user,
 * stop signal, health check, exposed ports; the volumes its image declared (its anonymous volumes'
 * targets, which a fork gets fresh).
 */
export function snapshotRunConfig(rec: ContainerRecord): ImageRunConfig {
  const c = rec.config;
  const signal = Object.entries(SIGNALS).find(([, n]) => n === c.stopSignal)?.[0];
  return {
    cmd: c.cmd,
    entrypoint: c.entrypoint,
    env: c.env.filter((e) => !e.startsWith('HOSTNAME=')),
    workdir: c.workdir,
    user: c.user,
    stopSignal: signal ?? String(c.stopSignal),
    volumes: c.mounts.flatMap((m) => (m.type === 'volume' && m.anonymous ? [m.target] : [])),
    exposedPorts: c.net.exposedPorts,
    healthcheck: c.healthcheck,
  };
}

/** The snapshots of one engine root. */
export class SnapshotStore {
  /** `<root>/snapshots`. */
  readonly dir: string;
  readonly #ctx: SnapshotStoreContext;

  /** The store under `ctx.root`; touches nothing until used. */
  constructor(ctx: SnapshotStoreContext) {
    this.#ctx = ctx;
    this.dir = join(ctx.root, 'snapshots');
  }

  get #lock(): string {
    return join(this.dir, 'lock');
  }

  /** The tree of snapshot layer `layer` (`snapshot:<hex>`), whether or not it exists. */
  layerDir(layer: string): string {
    return join(this.dir, layer.slice('snapshot:'.length), 'fs');
  }

  /**
   * Snapshots container `ref` (see the module); resolves with the new snapshot's record.
   *
   * @throws NotFoundError (`CONTAINER_NOT_FOUND`); InvalidArgumentError naming `labels`.
   */
  async take(ref: string, options: TakeSnapshotOptions = {}): Promise<SnapshotRecord> {
    const o = parseOptions(takeSnapshotSchema, options);
    const svc = this.#ctx.containers();
    const first = await svc.get(ref);
    await this.#sweep();
    const id = randomBytes(32).toString('hex');
    const staging = join(this.dir, `.staging-${ownerTag()}-${id}`);
    try {
      fs.mkdirSync(join(staging, 'fs'), { recursive: true, mode: 0o755 });
      fs.chmodSync(staging, 0o700);
      const { rec, size } = await this.#frozen(svc, first.id, (rec) => {
        const lower = rec.layers.map((d) => this.#ctx.layerDir(d));
        const upper = svc.paths(rec.id).upper;
        return cloneItems(walkUpper(upper, lower, mountPoints(rec)), join(staging, 'fs')).bytes;
      });
      const snap: SnapshotRecord = {
        id,
        created: new Date().toISOString(),
        container: rec.id,
        containerName: rec.name,
        image: rec.image,
        imageId: rec.imageId,
        config: snapshotRunConfig(rec),
        layers: [...rec.layers],
        labels: { ...o.labels },
        size,
      };
      fs.writeFileSync(join(staging, 'snapshot.json'), JSON.stringify(snap));
      fs.renameSync(staging, join(this.dir, id));
      return snap;
    } catch (e) {
      throw attachCleanupErrors(e, await cleanupErrors([() => removeTree(staging)]));
    }
  }

  /**
   * Runs `copy` on container `id` while its upper dir holds still: a running container paused
   * (and unpaused after, also when the copy fails), a paused one as it is, any other under its
   * lock (a start waits for it).
   */
  async #frozen(
    svc: ContainerService,
    id: string,
    copy: (rec: ContainerRecord) => number,
  ): Promise<{ rec: ContainerRecord; size: number }> {
    for (let attempt = 0; ; attempt++) {
      const rec = await svc.get(id);
      if (rec.state.status === 'paused') return { rec, size: copy(rec) };
      if (rec.state.status === 'running') {
        const paused = await svc.pause(id).catch((e: unknown) => {
          // Stopped meanwhile: copy it as a stopped container (a few tries).
          const code = (e as { code?: string }).code;
          if (attempt < 3 && (code === 'NOT_RUNNING' || code === 'INVALID_STATE')) return undefined;
          throw e;
        });
        if (paused === undefined) continue;
        let size: number;
        try {
          size = copy(paused);
        } catch (e) {
          throw attachCleanupErrors(e, await cleanupErrors([() => svc.unpause(id)]));
        }
        await svc.unpause(id);
        return { rec: paused, size };
      }
      const lock = await acquireLock(svc.paths(id).lock);
      try {
        const now = await svc.get(id);
        // Started meanwhile (before the lock): pause it instead.
        if (isActive(now.state.status) && now.state.status !== 'restarting' && attempt < 3) continue;
        return { rec: now, size: copy(now) };
      } finally {
        lock.release();
      }
    }
  }

  /** Removes what dead makers and removers left (`.staging-*`, `.removing-*` of processes gone). */
  async #sweep(): Promise<void> {
    for (const name of readdirIfExists(this.dir)) {
      if (ownerIsDead(name, '.staging-') === true || ownerIsDead(name, '.removing-') === true)
        await removeTree(join(this.dir, name));
    }
  }

  /** The record of snapshot `id` (full id or unique prefix of one). @throws NotFoundError (`NOT_FOUND`). */
  get(ref: string): SnapshotRecord {
    const key = ref.replace(/^snapshot:/, '');
    if (/^[0-9a-f]{1,64}$/.test(key)) {
      const matches = key.length === 64 ? [key] : this.#ids().filter((id) => id.startsWith(key));
      if (matches.length > 1)
        throw new InvalidArgumentError('id', `snapshot id prefix '${ref}' is ambiguous: give more characters`);
      const rec = matches[0] === undefined ? undefined : this.#read(matches[0]);
      if (rec) return rec;
    }
    throw new NotFoundError('other', ref, `snapshot '${ref}' not found`);
  }

  #ids(): string[] {
    return readdirIfExists(this.dir).filter((n) => HEX64.test(n));
  }

  /** The record of `id`, or undefined when it is gone or unreadable. */
  #read(id: string): SnapshotRecord | undefined {
    let text: string;
    try {
      text = fs.readFileSync(join(this.dir, id, 'snapshot.json'), 'utf8');
    } catch {
      // Gone (removed meanwhile), or never complete (a rename makes it whole): no snapshot.
      return undefined;
    }
    const r = snapshotRecordSchema.safeParse(JSON.parse(text));
    return r.success && r.data.id === id ? r.data : undefined;
  }

  /** Every snapshot, newest first. */
  list(): SnapshotRecord[] {
    return this.#ids()
      .flatMap((id) => this.#read(id) ?? [])
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  /** The diffIDs every snapshot sits on: layers the image store must keep. */
  layersInUse(): Set<string> {
    return new Set(this.list().flatMap((s) => s.layers.filter((d) => !SNAPSHOT_LAYER.test(d))));
  }

  /**
   * Runs `create` with what a fork of snapshot `ref` is made from (its record and the image it
   * resolves to), under the store's shared lock: a removal cannot come between the lookup and
   * the new container's record.
   *
   * @throws NotFoundError (`NOT_FOUND`) when there is no such snapshot.
   */
  async resolved<T>(ref: string, create: (image: ResolvedImage, snap: SnapshotRecord) => Promise<T>): Promise<T> {
    const id = this.get(ref).id; // a missing one is refused before the lock file is made
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return withSharedLock(this.#lock, async () => {
      const snap = this.get(id);
      const image: ResolvedImage = {
        id: snap.imageId,
        config: structuredClone(snap.config),
        layers: [snapshotLayer(snap.id), ...snap.layers],
      };
      return create(image, snap);
    });
  }

  /**
   * Removes snapshot `ref` and everything of it on disk.
   *
   * @throws NotFoundError (`NOT_FOUND`); ConflictError (`IN_USE`) while a container sits on it
   *   (unless `force`: those containers are removed first) or another snapshot does (always).
   */
  async remove(ref: string, options: { force?: boolean } = {}): Promise<void> {
    const snap = this.get(ref);
    const layer = snapshotLayer(snap.id);
    const svc = this.#ctx.containers();
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    await withLock(this.#lock, async () => {
      if (this.#read(snap.id) === undefined) throw new NotFoundError('other', ref, `snapshot '${ref}' not found`);
      const child = this.list().find((s) => s.layers.includes(layer));
      if (child)
        throw new ConflictError(
          'IN_USE',
          `snapshot ${snap.id.slice(0, 12)} is in use by snapshot ${child.id.slice(0, 12)}: remove that one first`,
        );
      const users = (await svc.list({ all: true })).filter((c) => c.layers.includes(layer));
      if (users.length > 0 && options.force !== true)
        throw new ConflictError(
          'IN_USE',
          `snapshot ${snap.id.slice(0, 12)} is in use by container ${labelOf(users[0]!)}` +
            `${users.length > 1 ? ` and ${users.length - 1} more` : ''}: remove them first, or force`,
        );
      for (const c of users) await svc.remove(c.id, { force: true, volumes: true });
      const gone = join(this.dir, `.removing-${ownerTag()}-${snap.id}`);
      fs.renameSync(join(this.dir, snap.id), gone);
      if (!(await removeTree(gone)))
        throw new BerthError(
          'KERNEL',
          `snapshot ${snap.id.slice(0, 12)}: its files could not all be removed (${gone})`,
        );
    });
    // The layers it kept after their image went: gone with it.
    await this.#ctx.releaseLayers(snap.layers.filter((d) => !SNAPSHOT_LAYER.test(d)));
  }
}
