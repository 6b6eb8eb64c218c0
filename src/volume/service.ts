/**
 * The volume manager: Docker's `local` driver. A volume is a directory
 * `<root>/volumes/<name>/_data` and a record `<root>/volumes/<name>.json`.
 *
 * Driver options, as `docker volume create -o`:
 * - none: a plain directory;
 * - `type=tmpfs` (`o=size=64m,mode=1777`): a tmpfs mounted on `_data` while a container uses it;
 * - `type=none,o=bind,device=/path`: `_data` is a bind of the host path while in use;
 * - `type=ext4|xfs|…,device=/dev/sdX|/path/to/image`: that file system mounted on `_data`
 *   while in use (an image file is attached through the kernel's loop support by mount(8)
 *   semantics: `o=loop` is required for files).
 *
 * Special volumes (the last three) are mounted on the host when the first container using them
 * starts and unmounted when the last one exits, under the volume's lock, so processes sharing
 * the root agree.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { RecordStore } from '../state/record-store.js';
import { withLock } from '../state/lock.js';
import { mountVolume, unmountVolume } from './mount.js';
import { COPY_UP_COMPLETE, COPY_UP_STAGING } from '../runtime/copy-up.js';

/** A volume name, as Docker allows them. */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

/** Schema of a volume record. */
export const volumeRecordSchema = z.object({
  name: z.string().regex(VOLUME_NAME_RE),
  driver: z.literal('local'),
  created: z.string(),
  labels: z.record(z.string(), z.string()),
  options: z.record(z.string(), z.string()),
  anonymous: z.boolean(),
  /** True once image content was copied into it (Docker's copy-up happens once). */
  populated: z.boolean(),
});

/** The persisted record of a volume. */
export type VolumeRecord = z.infer<typeof volumeRecordSchema>;

/** What the container manager needs to know about containers (to tell what uses a volume). */
export interface VolumeUsers {
  /** Ids of containers (any status) whose mounts name `volume`. */
  containersUsing(volume: string): Promise<string[]>;
  /** Ids of running containers whose mounts name `volume`. */
  runningContainersUsing(volume: string): Promise<string[]>;
}

/** What the volume manager needs from the engine. */
export interface VolumeServiceContext {
  /** The engine's state root. */
  root: string;
  /** Appends to the event log. */
  appendEvent(e: { type: 'volume'; action: string; id: string; attributes: Record<string, string> }): Promise<unknown>;
  /** Who uses volumes. */
  users: VolumeUsers;
}

/** Filters of {@link VolumeService.list}. */
export interface VolumeListFilter {
  /** Name substrings (any). */
  name?: string[];
  /** `key` or `key=value` (all). */
  label?: string[];
  /** true: only volumes no container uses; false: only used ones. */
  dangling?: boolean;
}

const SIZE_RE = /^\d+[kmgKMG]?$/;

/** Validates `local` driver options; throws InvalidArgumentError naming the option. */
export function checkDriverOptions(opts: Record<string, string>): void {
  for (const key of Object.keys(opts)) {
    if (!['type', 'o', 'device'].includes(key))
      throw new InvalidArgumentError(`driverOpts.${key}`, 'the local driver takes type, o and device');
  }
  const type = opts.type;
  if (type === undefined) {
    if (opts.o || opts.device) throw new InvalidArgumentError('driverOpts.type', 'o and device need a type');
    return;
  }
  if (type === 'tmpfs') {
    for (const o of (opts.o ?? '').split(',').filter(Boolean)) {
      const [k, v = ''] = o.split('=');
      if (k === 'size' && !SIZE_RE.test(v) && !/^\d+%$/.test(v))
        throw new InvalidArgumentError('driverOpts.o', `bad tmpfs size '${v}'`);
      if (k === 'mode' && !/^[0-7]{3,4}$/.test(v))
        throw new InvalidArgumentError('driverOpts.o', `bad tmpfs mode '${v}'`);
      if (!['size', 'mode', 'uid', 'gid', 'nr_inodes'].includes(k!))
        throw new InvalidArgumentError('driverOpts.o', `tmpfs option '${k}' is not supported`);
    }
    return;
  }
  if (!opts.device) throw new InvalidArgumentError('driverOpts.device', `type=${type} needs a device`);
  if (!opts.device.startsWith('/')) throw new InvalidArgumentError('driverOpts.device', 'must be an absolute path');
  if (type === 'none' && !(opts.o ?? '').split(',').includes('bind'))
    throw new InvalidArgumentError('driverOpts.o', 'type=none needs o=bind');
  if (!/^[a-z0-9]+$/.test(type))
    throw new InvalidArgumentError('driverOpts.type', `unknown file system type '${type}'`);
}

/** The volume manager of one engine root. */
export class VolumeService {
  readonly #ctx: VolumeServiceContext;
  /** Volume records. */
  readonly records: RecordStore<VolumeRecord>;
  readonly #dir: string;

  /** Creates the manager; touches nothing until used. */
  constructor(ctx: VolumeServiceContext) {
    this.#ctx = ctx;
    this.#dir = join(ctx.root, 'volumes');
    this.records = new RecordStore({
      dir: this.#dir,
      kind: 'volume',
      noun: 'volume',
      schema: volumeRecordSchema as never,
    });
  }

  /** The host directory containers see for volume `name`. */
  mountpoint(name: string): string {
    return join(this.#dir, name, '_data');
  }

  /**
   * Creates a volume, or returns the existing one with that name (idempotent, as
   * `docker volume create`). A name is generated when none is given (an anonymous volume).
   */
  async create(
    name: string | undefined,
    options: { labels?: Record<string, string>; driverOpts?: Record<string, string>; anonymous?: boolean } = {},
  ): Promise<VolumeRecord> {
    if (name !== undefined && !VOLUME_NAME_RE.test(name))
      throw new InvalidArgumentError('name', `'${name}' is not a valid volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
    checkDriverOptions(options.driverOpts ?? {});
    const n = name ?? randomBytes(32).toString('hex');
    const existing = await this.records.get(n);
    if (existing) return existing;
    const rec: VolumeRecord = {
      name: n,
      driver: 'local',
      created: new Date().toISOString(),
      labels: options.labels ?? {},
      options: options.driverOpts ?? {},
      anonymous: options.anonymous ?? name === undefined,
      populated: false,
    };
    mkdirSync(this.mountpoint(n), { recursive: true, mode: 0o755 });
    try {
      await this.records.create(n, rec);
    } catch (e) {
      if (e instanceof ConflictError) {
        const other = await this.records.get(n);
        if (other) return other; // Created by another process in between.
      }
      throw e;
    }
    await this.#event('create', rec);
    return rec;
  }

  /** A volume's record. */
  async get(name: string): Promise<VolumeRecord> {
    const rec = VOLUME_NAME_RE.test(name) ? await this.records.get(name) : undefined;
    if (!rec) throw new NotFoundError('volume', name, `volume '${name}' not found`);
    return rec;
  }

  /** Marks a volume as populated (copy-up done). */
  async markPopulated(name: string): Promise<void> {
    await this.records.update(name, (r) => (r.populated ? r : { ...r, populated: true }));
  }

  /**
   * Whether a container mounting the volume over image content should have its init copy that
   * content in: the volume is empty, or holds what a killed copy-up left (its staging or its
   * complete copy not yet moved in: see the protocol in `runtime/copy-up.ts`), which the init
   * removes or finishes under the volume's lock. Any other entry means it was filled already.
   */
  awaitsCopyUp(name: string): boolean {
    let names: string[];
    try {
      names = readdirSync(this.mountpoint(name));
    } catch {
      // Not made yet: empty, so it awaits its copy-up.
      return true;
    }
    return names.length === 0 || names.includes(COPY_UP_STAGING) || names.includes(COPY_UP_COMPLETE);
  }

  /**
   * Mounts a special volume (tmpfs, bind, device) on its `_data` if it is not mounted yet.
   * Called before a container using it starts.
   */
  async acquire(name: string): Promise<void> {
    const rec = await this.get(name);
    if (!rec.options.type) return;
    await withLock(join(this.#dir, `${name}.mount.lock`), async () => {
      const target = this.mountpoint(name);
      if (isMountPoint(target)) return;
      mkdirSync(target, { recursive: true });
      await mountVolume(target, rec.options);
    });
  }

  /** Unmounts a special volume when no running container uses it any more. */
  async release(name: string): Promise<void> {
    const rec = await this.records.get(name);
    if (!rec?.options.type) return;
    await withLock(join(this.#dir, `${name}.mount.lock`), async () => {
      if ((await this.#ctx.users.runningContainersUsing(name)).length > 0) return;
      const target = this.mountpoint(name);
      if (isMountPoint(target)) unmountVolume(target);
    });
  }

  /** Removes a volume; refused while a container uses it unless `force`. */
  async remove(name: string, options: { force?: boolean } = {}): Promise<void> {
    const rec = await this.get(name);
    const users = await this.#ctx.users.containersUsing(name);
    if (users.length && !options.force) {
      throw new ConflictError(
        'IN_USE',
        `volume '${name}' is in use by container ${users.map((u) => u.slice(0, 12)).join(', ')}; remove the container first or use force`,
      );
    }
    const target = this.mountpoint(name);
    if (isMountPoint(target)) unmountVolume(target);
    await this.records.delete(name);
    rmSync(join(this.#dir, name), { recursive: true, force: true });
    await this.#event('destroy', rec);
  }

  /** Lists volumes, by name. */
  async list(filter: VolumeListFilter = {}): Promise<VolumeRecord[]> {
    const out: VolumeRecord[] = [];
    for (const r of await this.records.list()) {
      if (filter.name?.length && !filter.name.some((n) => r.name.includes(n))) continue;
      if (
        !(filter.label ?? []).every((l) => {
          const i = l.indexOf('=');
          return i < 0 ? l in r.labels : r.labels[l.slice(0, i)] === l.slice(i + 1);
        })
      )
        continue;
      if (
        filter.dangling !== undefined &&
        ((await this.#ctx.users.containersUsing(r.name)).length === 0) !== filter.dangling
      )
        continue;
      out.push(r);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Removes every volume no container uses (anonymous ones only unless `all`, as Docker ≥ 23). Returns the names. */
  async prune(options: { all?: boolean } = {}): Promise<string[]> {
    const removed: string[] = [];
    for (const r of await this.list({ dangling: true })) {
      if (!r.anonymous && !options.all) continue;
      await this.remove(r.name).then(
        () => removed.push(r.name),
        () => undefined,
      );
    }
    return removed;
  }

  /** Ids of containers using volume `name`. */
  usedBy(name: string): Promise<string[]> {
    return this.#ctx.users.containersUsing(name);
  }

  async #event(action: string, rec: VolumeRecord): Promise<void> {
    await this.#ctx.appendEvent({
      type: 'volume',
      action,
      id: rec.name,
      attributes: { driver: rec.driver, ...rec.labels },
    });
  }
}

/** Whether `path` is a mount point (its device differs from its parent's, or it is listed in mountinfo). */
export function isMountPoint(path: string): boolean {
  try {
    const st = statSync(path);
    const parent = statSync(join(path, '..'));
    if (st.dev !== parent.dev) return true;
  } catch {
    // Not there: not a mount point.
    return false;
  }
  // A bind of a directory on the same file system keeps the device number: check mountinfo.
  const esc = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  try {
    return readMountinfo().some((l) => l.split(' ')[4] === esc);
  } catch {
    // No /proc: nothing known to be mounted there.
    return false;
  }
}

function readMountinfo(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
}
