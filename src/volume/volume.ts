/**
 * The public `Volume` handle.
 *
 * @module
 */
import { z } from 'zod';
import { Engine, engineOption } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import { parseOptions } from '../container/options.js';
import { VOLUME_NAME_RE, type VolumeRecord } from './service.js';

/** Options every volume method accepts. */
export interface VolumeEngineOption {
  /** The engine to use. Default {@link Engine.default}. */
  engine?: Engine;
}

/** Options of {@link Volume.create}. */
export interface VolumeCreateOptions {
  /** Labels. */
  labels?: Record<string, string>;
  /** `local` driver options: `type` (`tmpfs`, `none`, a file system type), `o`, `device`. */
  driverOpts?: Record<string, string>;
}

/** What {@link Volume.inspect} returns. */
export interface VolumeInfo {
  /** Name. */
  name: string;
  /** Always `local`. */
  driver: 'local';
  /** The host directory containers see. */
  mountpoint: string;
  /** When it was created. */
  created: Date;
  /** Labels. */
  labels: Record<string, string>;
  /** Driver options. */
  options: Record<string, string>;
  /** True for a volume made for a container without a name (removed with it by `remove({ volumes: true })`). */
  anonymous: boolean;
  /** Ids of the containers that mount it (any status). */
  usedBy: string[];
}

/** Filters of {@link Volume.list}. */
export interface VolumeListOptions extends VolumeEngineOption {
  /** Name substring(s). */
  name?: string | string[];
  /** `key` or `key=value`. */
  label?: string | string[];
  /** Only volumes no container uses (true) or only used ones (false). */
  dangling?: boolean;
}

const toList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

const createSchema = z.strictObject({
  labels: z.record(z.string().min(1), z.string()).optional(),
  driverOpts: z.record(z.string(), z.string()).optional(),
});

const listSchema = z.strictObject({
  engine: z.unknown().optional(),
  name: z.union([z.string(), z.array(z.string())]).optional(),
  label: z.union([z.string(), z.array(z.string())]).optional(),
  dangling: z.boolean().optional(),
});

/**
 * A named volume. The constructor touches nothing.
 *
 * @example
 * ```ts
 * import { Volume, Container } from 'berth';
 * await new Volume('data').create();
 * const w = await Container.run('busybox', ['sh', '-c', 'echo hi > /data/f'], { volumes: ['data:/data'] });
 * await w.wait();
 * ```
 */
export class Volume {
  /** The volume's name. */
  readonly name: string;
  readonly #engine: Engine | undefined;

  /** A handle on volume `name`. */
  constructor(name: string, options: VolumeEngineOption = {}) {
    if (typeof name !== 'string' || !VOLUME_NAME_RE.test(name)) {
      throw new InvalidArgumentError(
        'name',
        `'${String(name)}' is not a valid volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]*`,
      );
    }
    this.name = name;
    this.#engine = engineOption(options);
  }

  get #svc() {
    return (this.#engine ?? Engine.default()).volumes;
  }

  /** Creates the volume; an existing volume with this name is returned as is (`docker volume create`). */
  async create(options: VolumeCreateOptions = {}): Promise<this> {
    const o = parseOptions(createSchema, options) as VolumeCreateOptions;
    await this.#svc.create(this.name, o);
    return this;
  }

  /** Its record and who uses it. */
  async inspect(): Promise<VolumeInfo> {
    const svc = this.#svc;
    return toInfo(await svc.get(this.name), svc.mountpoint(this.name), await svc.usedBy(this.name));
  }

  /** Whether it exists. */
  async exists(): Promise<boolean> {
    return (await this.#svc.records.get(this.name)) !== undefined;
  }

  /** Removes it; refused with `IN_USE` while a container uses it, unless `force`. */
  async remove(options: { force?: boolean } = {}): Promise<void> {
    const o = parseOptions(z.strictObject({ force: z.boolean().optional() }), options);
    await this.#svc.remove(this.name, o);
  }

  /** Lists volumes, by name. */
  static async list(options: VolumeListOptions = {}): Promise<VolumeInfo[]> {
    const o = parseOptions(listSchema, options);
    const svc = (engineOption(options) ?? Engine.default()).volumes;
    const recs = await svc.list({
      name: toList(o.name),
      label: toList(o.label),
      ...(o.dangling !== undefined ? { dangling: o.dangling } : {}),
    });
    return Promise.all(recs.map(async (r) => toInfo(r, svc.mountpoint(r.name), await svc.usedBy(r.name))));
  }

  /** Removes volumes no container uses: anonymous ones, or all with `all` (as `docker volume prune [-a]`). Returns their names. */
  static async prune(options: VolumeEngineOption & { all?: boolean } = {}): Promise<string[]> {
    return (engineOption(options) ?? Engine.default()).volumes.prune({ all: options.all ?? false });
  }
}

function toInfo(r: VolumeRecord, mountpoint: string, usedBy: string[]): VolumeInfo {
  return {
    name: r.name,
    driver: r.driver,
    mountpoint,
    created: new Date(r.created),
    labels: r.labels,
    options: r.options,
    anonymous: r.anonymous,
    usedBy,
  };
}
