/**
 * The public `Snapshot` handle: a container's file system frozen as a layer, forked into new
 * containers in O(1) of its size (see `snapshot-store.ts` for how).
 *
 * @module
 */
import { z } from 'zod';
import { Engine, engineOption } from '../engine.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { ContainerCreateOptions } from './options.js';
import { parseOptions } from './options.js';
import { snapshotLayer, type SnapshotRecord } from './snapshot-store.js';

/** What {@link Snapshot.inspect} and {@link Snapshot.list} report. */
export interface SnapshotInfo {
  /** The snapshot's id (64 hex). */
  id: string;
  /** When it was taken (RFC 3339). */
  created: string;
  /** The id of the container it was taken from (which may be gone since). */
  container: string;
  /** That container's name, when it had one. */
  containerName: string;
  /** The source container's image reference. */
  image: string;
  /** The source container's image id (a fork's `imageId`). */
  imageId: string;
  /** Its labels. */
  labels: Record<string, string>;
  /** Bytes of file content it holds (what the source had written over its image). */
  size: number;
}

/** Options of {@link Container.snapshot}. */
export interface SnapshotOptions {
  /** Labels of the snapshot (filter {@link Snapshot.list} by them). */
  labels?: Record<string, string>;
}

/** Options of {@link Snapshot.list}. */
export interface SnapshotListOptions {
  /** The engine to use. Default {@link Engine.default}. */
  engine?: Engine;
  /** Only snapshots with these labels: `key` (set) or `key=value`. */
  label?: string | string[];
}

/** Options of {@link Snapshot.remove}. */
export interface SnapshotRemoveOptions {
  /** Also remove the containers made from it (killing running ones). Default: refuse with `IN_USE`. */
  force?: boolean;
}

/** Options of `Container.create` with a snapshot where the image goes (see {@link Snapshot.fork}). */
export type SnapshotCreateOptions = Omit<ContainerCreateOptions, 'image'> & {
  /** The snapshot the container starts from. */
  image: Snapshot;
  /** The engine to use. Default: the snapshot's. */
  engine?: Engine;
};

const BRAND = Symbol.for('berth.snapshot.v1');

const listSchema = z.strictObject({
  engine: z.unknown().optional(),
  label: z.union([z.string(), z.array(z.string())]).optional(),
});

const removeSchema = z.strictObject({ force: z.boolean().optional() });

function info(s: SnapshotRecord): SnapshotInfo {
  return {
    id: s.id,
    created: s.created,
    container: s.container,
    containerName: s.containerName,
    image: s.image,
    imageId: s.imageId,
    labels: { ...s.labels },
    size: s.size,
  };
}

/** Whether `labels` carry every filter (`key` or `key=value`). */
function hasLabels(labels: Record<string, string>, filters: readonly string[]): boolean {
  return filters.every((f) => {
    const at = f.indexOf('=');
    return at < 0 ? f in labels : labels[f.slice(0, at)] === f.slice(at + 1);
  });
}

/**
 * A snapshot of a container's file system, by id (or a unique prefix of one). Made by
 * {@link Container.snapshot}; `Container.run(snapshot, command?, options?)`,
 * `Container.create({ image: snapshot, … })` and {@link Snapshot.fork} start containers from it,
 * each over a fresh, empty upper dir: a fork's writes are its own, and its start costs the same
 * whatever the snapshot holds. It lives until {@link Snapshot.remove}, and keeps the layers below
 * it (its source's image's) even when that image is removed.
 *
 * A fork's defaults are its source's settings (command, entrypoint, environment, working
 * directory, user, stop signal, health check, exposed ports), as `docker commit` records them;
 * options override them as they override an image's. Volumes are not part of a snapshot: a fork
 * gets fresh ones. A fork's `diff()` lists its changes since the snapshot; its `export()` holds
 * everything; its `commit()` records one layer over its source's image (the snapshot's changes
 * and its own, merged).
 *
 * @example
 * ```ts
 * await using db = await Container.run('busybox', ['sh', '-c', 'echo seeded > /data; exec sleep 1d']);
 * const snap = await db.snapshot();
 * await using a = await snap.fork({ command: ['cat', '/data'] });   // 'seeded'
 * await using b = await Container.run(snap, ['sh', '-c', 'echo b > /data']); // not seen by a, nor by snap
 * await snap.remove({ force: true });
 * ```
 */
export class Snapshot {
  /** The id this handle was made with (after {@link Container.snapshot}: the full id). */
  readonly id: string;
  /** The engine it belongs to; undefined for {@link Engine.default}. */
  readonly engine: Engine | undefined;

  /**
   * A handle on snapshot `id` (full, unique prefix, or `snapshot:<id>`); touches nothing until a
   * method is called.
   *
   * @throws InvalidArgumentError naming `id` when it is not hex; naming `engine`.
   */
  constructor(id: string, options: { engine?: Engine } = {}) {
    if (typeof id !== 'string' || !/^(snapshot:)?[0-9a-f]{1,64}$/.test(id))
      throw new InvalidArgumentError('id', 'expected a snapshot id (hex, or a unique prefix of one)');
    this.id = id.replace(/^snapshot:/, '');
    this.engine = engineOption(options);
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** Whether `v` is a {@link Snapshot} (of this copy of berth or another one loaded in the process). */
  static isSnapshot(v: unknown): v is Snapshot {
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
  }

  get #store() {
    return (this.engine ?? Engine.default()).snapshots;
  }

  /**
   * Takes a snapshot of container `ref` (see {@link Container.snapshot}, which calls this).
   * @internal
   */
  static async take(ref: string, options: SnapshotOptions, engine: Engine | undefined): Promise<Snapshot> {
    const rec = await (engine ?? Engine.default()).snapshots.take(ref, options);
    return new Snapshot(rec.id, engine ? { engine } : {});
  }

  /** Every snapshot of the engine's root, newest first, filtered by label. */
  static async list(options: SnapshotListOptions = {}): Promise<SnapshotInfo[]> {
    const o = parseOptions(listSchema, options);
    const engine = engineOption(options);
    const labels = o.label === undefined ? [] : typeof o.label === 'string' ? [o.label] : o.label;
    return (engine ?? Engine.default()).snapshots
      .list()
      .filter((s) => hasLabels(s.labels, labels))
      .map(info);
  }

  /** Its details. @throws NotFoundError (`NOT_FOUND`) when it is gone. */
  async inspect(): Promise<SnapshotInfo> {
    return info(this.#store.get(this.id));
  }

  /**
   * Removes it: nothing of it stays on disk. Refused with `IN_USE` while a container made from it
   * exists (any state) unless `force`, which removes those containers first; always refused while
   * another snapshot was taken from one of them (remove that one first).
   *
   * @throws NotFoundError (`NOT_FOUND`); ConflictError (`IN_USE`); InvalidArgumentError naming `force`.
   */
  async remove(options: SnapshotRemoveOptions = {}): Promise<void> {
    const o = parseOptions(removeSchema, options);
    await this.#store.remove(this.id, o);
  }

  /**
   * Creates (does not start) a container from it: what `Container.create({ image: snapshot })`
   * calls. Resolves with the new container's id.
   * @internal
   */
  async create(options: SnapshotCreateOptions): Promise<string> {
    const engine = engineOption(options) ?? this.engine;
    const { engine: _engine, image: _image, ...rest } = options;
    const e = engine ?? Engine.default();
    const rec = await e.snapshots.resolved(this.id, (image, snap) =>
      e.containers.create({ ...rest, image: snapshotLayer(snap.id) }, image),
    );
    return rec.id;
  }

  /** Same as `remove({ force: true })`, for `await using`; one removed already is fine. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true }).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
  }
}
