/**
 * The public `Network` handle.
 *
 * @module
 */
import { z } from 'zod';
import { Engine, engineOption } from '../engine.js';
import { InvalidArgumentError, StateError } from '../errors.js';
import type { NetworkService } from './service.js';
import type { NetworkCreateOptions } from './options.js';
import type { NetworkRecord } from './record.js';

/**
 * The network service of `engine` ({@link Engine.networks}).
 * @internal
 */
export function networkService(engine: Engine): NetworkService {
  return engine.networks;
}

/** Options every `Network` method accepts. */
export interface NetworkEngineOption {
  /** The engine to use. Default {@link Engine.default}. */
  engine?: Engine;
}

/** Options of {@link Network.connect}. */
export interface NetworkConnectOptions {
  /** Extra names of the container on this network. */
  aliases?: string[];
  /** A fixed IPv4 address in the network's subnet. */
  ip?: string;
}

/** One container attached to a network, as {@link NetworkInfo} reports it. */
export interface NetworkContainerInfo {
  /** The container's full id. */
  id: string;
  /** Its name ('' when unknown). */
  name: string;
  /** Its IPv4 address with prefix length, e.g. `10.89.0.2/24`. */
  ipv4Address: string;
  /** Its MAC address. */
  macAddress: string;
  /** Its names on this network besides its own. */
  aliases: string[];
  /** Its published ports. */
  ports: { containerPort: number; protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number }[];
}

/** What {@link Network.inspect} and {@link Network.list} report (Docker's `network inspect`, in camelCase). */
export interface NetworkInfo {
  /** The network's id (64 hex digits). */
  id: string;
  /** Its name. */
  name: string;
  /** Always `bridge`. */
  driver: 'bridge';
  /** Creation time, ISO 8601. */
  created: string;
  /** IPv4 subnet, CIDR. */
  subnet: string;
  /** Gateway address (the bridge's). */
  gateway: string;
  /** Address range containers get addresses from; null for the whole subnet. */
  ipRange: string | null;
  /** Whether the network has no route out. */
  internal: boolean;
  /** Labels. */
  labels: Record<string, string>;
  /** Driver options. */
  options: Record<string, string>;
  /** The Linux bridge device. */
  bridge: string;
  /** The attached containers, by id. */
  containers: Record<string, NetworkContainerInfo>;
}

function toInfo(r: NetworkRecord): NetworkInfo {
  const prefix = r.subnet.split('/')[1];
  const containers: Record<string, NetworkContainerInfo> = {};
  for (const ep of Object.values(r.endpoints)) {
    containers[ep.containerId] = {
      id: ep.containerId,
      name: ep.name,
      ipv4Address: `${ep.address}/${prefix}`,
      macAddress: ep.mac,
      aliases: ep.aliases,
      ports: ep.ports,
    };
  }
  return {
    id: r.id,
    name: r.name,
    driver: r.driver,
    created: r.created,
    subnet: r.subnet,
    gateway: r.gateway,
    ipRange: r.ipRange,
    internal: r.internal,
    labels: r.labels,
    options: r.options,
    bridge: r.bridge,
    containers,
  };
}

const connectSchema = z.strictObject({ aliases: z.array(z.string()).optional(), ip: z.string().optional() });
const listSchema = z.strictObject({
  engine: z.unknown().optional(),
  label: z.union([z.string(), z.array(z.string())]).optional(),
  name: z.union([z.string(), z.array(z.string())]).optional(),
});

const toList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * A network, by name, id or unique id prefix. The constructor touches nothing.
 *
 * @example
 * ```ts
 * import { Network } from 'berth';
 * const net = await new Network('backend').create({ subnet: '10.89.5.0/24' });
 * console.log((await net.inspect()).gateway); // 10.89.5.1
 * await net.remove();
 * ```
 */
export class Network {
  /** The reference this handle was made with. */
  readonly ref: string;
  readonly #engine: Engine | undefined;

  /** A handle on the network `nameOrId`. */
  constructor(nameOrId: string, options: NetworkEngineOption = {}) {
    if (typeof nameOrId !== 'string' || !nameOrId)
      throw new InvalidArgumentError('name', 'expected a network name or id');
    this.ref = nameOrId;
    this.#engine = engineOption(options);
  }

  get #engineOrDefault(): Engine {
    return this.#engine ?? Engine.default();
  }

  get #svc(): NetworkService {
    return networkService(this.#engineOrDefault);
  }

  /** Creates the network, as `docker network create`; resolves to a handle on it. */
  async create(options: NetworkCreateOptions = {}): Promise<Network> {
    const rec = await this.#svc.create(this.ref, options);
    return new Network(rec.name, this.#engine ? { engine: this.#engine } : {});
  }

  /** The network's settings and attached containers. */
  async inspect(): Promise<NetworkInfo> {
    return toInfo(await this.#svc.get(this.ref));
  }

  /** Removes the network; refused with `IN_USE` while containers are attached. */
  async remove(): Promise<void> {
    await this.#svc.remove(this.ref);
  }

  /**
   * Connects a running container, as `docker network connect`: it gets a new interface (eth1, …)
   * at once, and its peers' hosts files are updated.
   *
   * @throws StateError `NOT_RUNNING` when the container does not run.
   */
  async connect(container: string | { ref: string }, options: NetworkConnectOptions = {}): Promise<void> {
    const parsed = connectSchema.safeParse(options);
    if (!parsed.success)
      throw new InvalidArgumentError(
        String(parsed.error.issues[0]?.path.join('.') ?? ''),
        parsed.error.issues[0]?.message ?? 'invalid',
      );
    const rec = await this.#engineOrDefault.containers.get(typeof container === 'string' ? container : container.ref);
    if (rec.state.status !== 'running' || rec.state.pid <= 0) {
      throw new StateError(
        rec.state.status,
        'connect',
        `container '${rec.name || rec.id.slice(0, 12)}' is not running; start it first`,
        'NOT_RUNNING',
      );
    }
    await this.#svc.connect(rec.id, rec.state.pid, {
      network: this.ref,
      name: rec.name,
      hostname: rec.config.hostname,
      ...parsed.data,
    });
  }

  /** Disconnects a container, as `docker network disconnect`. */
  async disconnect(container: string | { ref: string }): Promise<void> {
    const rec = await this.#engineOrDefault.containers.get(typeof container === 'string' ? container : container.ref);
    await this.#svc.disconnect(
      rec.id,
      rec.state.status === 'running' && rec.state.pid > 0 ? rec.state.pid : undefined,
      this.ref,
    );
  }

  /** Every network, as `docker network ls`. */
  static async list(
    options: NetworkEngineOption & { label?: string | string[]; name?: string | string[] } = {},
  ): Promise<NetworkInfo[]> {
    const p = listSchema.safeParse(options);
    if (!p.success)
      throw new InvalidArgumentError(
        String(p.error.issues[0]?.path.join('.') ?? ''),
        p.error.issues[0]?.message ?? 'invalid',
      );
    const recs = await networkService(engineOption(options) ?? Engine.default()).list({
      label: toList(options.label),
      name: toList(options.name),
    });
    return recs.map(toInfo);
  }

  /** Removes every network no container uses, as `docker network prune`; resolves to their names. */
  static async prune(options: NetworkEngineOption = {}): Promise<string[]> {
    return networkService(engineOption(options) ?? Engine.default()).prune();
  }
}
