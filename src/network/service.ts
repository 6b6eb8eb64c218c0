/**
 * The network manager of one engine root: network records, IPAM, bridges, NAT and published
 * ports, and the attachments of containers. See README.md in this folder for the model.
 *
 * Locks, always taken in this order: the root's ports lock (`networks/ports.lock`, around port
 * choice and the endpoint write), a network record's lock ({@link RecordStore.update}, around
 * address allocation and bridge changes), the rules lock (`networks/rules.lock`, around reading
 * every record and replacing the nf_tables table).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { BerthError, cleanupAfter, cleanupAfterAsync, ConflictError, NotFoundError } from '../errors.js';
import { RecordStore } from '../state/record-store.js';
import { withLock } from '../state/lock.js';
import { LinuxDataplane, type NetworkDataplane } from './dataplane.js';
import { chooseSubnet, allocateEndpoint } from './allocate.js';
import { applyRules } from './apply-rules.js';
import { defaultGateway, formatCidr, formatIp, parseCidr } from './ipam.js';
import { choosePorts, exposedToBindings, parsePorts, type PortBinding, type PublishedPort } from './ports.js';
import { networkRecordSchema, type EndpointRecord, type NetworkRecord } from './record.js';
import { SubnetClaims } from './subnet-claims.js';
import {
  attachmentSchema,
  checkAddress,
  DEFAULT_NETWORK,
  invalid,
  parseCreateOptions,
  type AttachmentOptions,
  type NetworkCreateOptions,
} from './options.js';
import { hostsFileContent, rewriteHostsPeers, type HostsEntry, type HostsSelf } from './hosts.js';
import type { PlanInterface } from '../runtime/plan-interface.js';

/** The options of `prepareAttachment` (defined with their schema in `options.ts`). */
export type { AttachmentOptions } from './options.js';

/** Host-wide directory of subnet claims, shared by every engine root on the machine. */
export const DEFAULT_SUBNET_CLAIMS_DIR = '/run/berth-subnets';

/** One attachment of a container, as {@link NetworkService.attachmentsOf} returns it. */
export interface Attachment {
  /** The network's record. */
  network: NetworkRecord;
  /** The container's endpoint on it. */
  endpoint: EndpointRecord;
}

/** What the network service needs from its engine. */
export interface NetworkServiceContext {
  /** The engine's state root; records live in `<root>/networks`. */
  root: string;
  /** The host's kernel. Default {@link LinuxDataplane}. */
  dataplane?: NetworkDataplane;
  /** Host-wide subnet claims, so two roots never pick one subnet. Default {@link DEFAULT_SUBNET_CLAIMS_DIR}. */
  subnetClaimsDir?: string;
  /** Records an event (`network` `create`, `destroy`, `connect`, `disconnect`). */
  appendEvent?: (e: { type: 'network'; action: string; id: string; attributes: Record<string, string> }) => unknown;
  /** The hosts file of a container. Default `<root>/containers/<id>/hosts`. */
  hostsPath?: (containerId: string) => string;
}

/**
 * Networks of one engine root.
 *
 * @example
 * ```ts
 * const svc = new NetworkService({ root: '/var/lib/berth' });
 * const net = await svc.create('backend', { subnet: '10.89.5.0/24' });
 * const iface = await svc.prepareAttachment(containerId, { network: 'backend', name: 'web' });
 * // … the init calls setupInterfacesInContainer([iface], hostNetnsFd, hostNetlinkFd) …
 * await svc.releaseAttachment(containerId);
 * ```
 */
export class NetworkService {
  /** The network records. */
  readonly records: RecordStore<NetworkRecord>;
  readonly #ctx: NetworkServiceContext;
  readonly #dir: string;
  #dataplane: NetworkDataplane | undefined;
  readonly #subnets: SubnetClaims;

  /** Creates the service; touches nothing until used. */
  constructor(ctx: NetworkServiceContext) {
    this.#ctx = ctx;
    this.#dir = join(ctx.root, 'networks');
    this.#subnets = new SubnetClaims(ctx.subnetClaimsDir ?? DEFAULT_SUBNET_CLAIMS_DIR, ctx.root);
    // Endpoints change with every container start and stop: atomic renames, no fsync (as for containers).
    this.records = new RecordStore<NetworkRecord>({
      dir: this.#dir,
      kind: 'network',
      schema: networkRecordSchema as z.ZodType<NetworkRecord>,
      fsync: false,
    });
  }

  get #dp(): NetworkDataplane {
    this.#dataplane ??= this.#ctx.dataplane ?? new LinuxDataplane();
    return this.#dataplane;
  }

  #hostsPath(id: string): string {
    return this.#ctx.hostsPath?.(id) ?? join(this.#ctx.root, 'containers', id, 'hosts');
  }

  async #event(action: string, rec: NetworkRecord, extra: Record<string, string> = {}): Promise<void> {
    await this.#ctx.appendEvent?.({
      type: 'network',
      action,
      id: rec.id,
      attributes: { name: rec.name, type: rec.driver, ...extra },
    });
  }

  // ---- networks ----

  /**
   * Creates a bridge network. Options are checked before anything changes.
   *
   * @throws InvalidArgumentError naming the field; ConflictError `NAME_CONFLICT` when the name is
   * taken, `CONFLICT` when the subnet overlaps another network's or no default subnet is left.
   */
  async create(name: string, options: NetworkCreateOptions = {}, isDefault = false): Promise<NetworkRecord> {
    const { o, mtu, fixed } = parseCreateOptions(name, options, isDefault);
    if (await this.records.resolveName(name))
      throw new ConflictError(
        'NAME_CONFLICT',
        `network '${name}' already exists; choose another name or remove it first`,
      );

    const id = randomBytes(32).toString('hex');
    const key = `${this.#ctx.root}:${id}`;
    this.#subnets.pending.add(key);
    try {
      const subnet = chooseSubnet(this.#subnets, this.#dp, fixed, id);
      const gateway = o.gateway ?? formatIp(defaultGateway(subnet));
      const rec: NetworkRecord = {
        id,
        name,
        created: new Date().toISOString(),
        driver: 'bridge',
        subnet: formatCidr(subnet),
        gateway,
        ipRange: o.ipRange ?? null,
        internal: o.internal ?? false,
        labels: o.labels ?? {},
        options: o.options ?? {},
        bridge: `br-${id.slice(0, 12)}`,
        mtu,
        isDefault,
        endpoints: {},
      };
      try {
        await this.records.create(id, rec);
        try {
          await this.records.reserveName(name, id);
        } catch (e) {
          throw await cleanupAfterAsync(e, () => this.records.delete(id));
        }
      } catch (e) {
        throw cleanupAfter(e, () => this.#subnets.unclaim(rec.subnet, id));
      }
      await this.#event('create', rec);
      return rec;
    } finally {
      this.#subnets.pending.delete(key);
    }
  }

  /** The network `ref` (name, id or unique id prefix). */
  async get(ref: string): Promise<NetworkRecord> {
    const id = await this.records.resolve(ref);
    const rec = await this.records.get(id);
    if (!rec) throw new NotFoundError('network', ref);
    return rec;
  }

  /** Every network, optionally filtered by labels (`key` or `key=value`, all must match) and name substring. */
  async list(filter: { label?: string[]; name?: string[] } = {}): Promise<NetworkRecord[]> {
    const all = await this.records.list();
    return all
      .filter((n) =>
        (filter.label ?? []).every((l) => {
          const [k, v] = l.split('=', 2) as [string, string | undefined];
          return v === undefined ? k in n.labels : n.labels[k] === v;
        }),
      )
      .filter((n) => !filter.name?.length || filter.name.some((s) => n.name.includes(s)))
      .sort((a, b) => a.created.localeCompare(b.created));
  }

  /** The default network, created on first use. */
  async ensureDefault(): Promise<NetworkRecord> {
    for (;;) {
      const id = await this.records.resolveName(DEFAULT_NETWORK);
      if (id) {
        const rec = await this.records.get(id);
        if (rec) return rec;
      }
      try {
        return await this.create(DEFAULT_NETWORK, {}, true);
      } catch (e) {
        if (!(e instanceof ConflictError) || e.code !== 'NAME_CONFLICT') throw e;
      }
    }
  }

  async #resolveForUse(ref: string): Promise<NetworkRecord> {
    return ref === DEFAULT_NETWORK ? this.ensureDefault() : this.get(ref);
  }

  /**
   * Removes a network and its bridge.
   *
   * @throws ConflictError `IN_USE` naming the containers while any is attached; NotFoundError.
   */
  async remove(ref: string): Promise<void> {
    const rec = await this.get(ref);
    let removed: NetworkRecord | undefined;
    await this.records.update(rec.id, (r) => {
      const users = Object.values(r.endpoints);
      if (users.length > 0) {
        const names = users.map((u) => u.name || u.containerId.slice(0, 12)).join(', ');
        throw new ConflictError('IN_USE', `network '${r.name}' is in use by ${names}; disconnect or remove them first`);
      }
      removed = r;
      return r;
    });
    if (!removed) return;
    this.#dp.deleteLink(removed.bridge);
    await this.records.releaseName(removed.name, removed.id);
    await this.records.delete(removed.id);
    this.#subnets.unclaim(removed.subnet, removed.id);
    await this.#applyRules();
    await this.#event('destroy', removed);
  }

  /** Removes every network no container uses (the default one included, as it is re-created on use); returns their names. */
  async prune(): Promise<string[]> {
    const out: string[] = [];
    for (const n of await this.records.list()) {
      if (Object.keys(n.endpoints).length > 0) continue;
      try {
        await this.remove(n.id);
        out.push(n.name);
      } catch (e) {
        if (!(e instanceof BerthError) || (e.code !== 'IN_USE' && e.code !== 'NETWORK_NOT_FOUND')) throw e;
      }
    }
    return out;
  }

  // ---- attachments ----

  /** Ids of every container holding an endpoint on any network of this root. */
  async endpointContainerIds(): Promise<string[]> {
    const ids = new Set<string>();
    for (const n of await this.records.list()) for (const id of Object.keys(n.endpoints)) ids.add(id);
    return [...ids];
  }

  /** Every network `containerId` is attached to. */
  async attachmentsOf(containerId: string): Promise<Attachment[]> {
    const out: Attachment[] = [];
    for (const n of await this.records.list()) {
      const ep = n.endpoints[containerId];
      if (ep) out.push({ network: n, endpoint: ep });
    }
    return out;
  }

  /**
   * Checks an attachment before the container that asks for it is created (as Docker's create
   * does): the network exists, and `ip` is a host address of its subnet. Changes nothing.
   *
   * @throws NotFoundError `NETWORK_NOT_FOUND`; InvalidArgumentError naming `ip`.
   */
  async checkAttachment(o: { network: string; ip?: string }): Promise<void> {
    const net = await this.get(o.network);
    if (o.ip !== undefined) checkAddress(net, o.ip);
  }

  /**
   * Attaches `containerId` to a network for a start: publishes its ports (choosing free host
   * ports), allocates its address (persisted; across processes sharing the root), makes sure the
   * bridge exists and is up with the gateway address, installs the NAT and forward rules, and
   * returns the interface for `setupInterfacesInContainer`. Calling it again for an attached
   * container replaces the attachment and keeps its address.
   *
   * @throws InvalidArgumentError naming the field; NotFoundError for an unknown network;
   * ConflictError `CONFLICT` when an address or host port is taken.
   */
  async prepareAttachment(containerId: string, options: AttachmentOptions): Promise<PlanInterface> {
    const p = attachmentSchema.safeParse(options);
    if (!p.success) throw invalid(p.error);
    const o = p.data;
    const explicit = parsePorts((o.ports ?? []) as Array<string | PortBinding>);
    const bindings = o.publishAll ? [...explicit, ...exposedToBindings(o.exposedPorts ?? [], explicit)] : explicit;
    const net = await this.#resolveForUse(o.network);
    const subnet = parseCidr(net.subnet)!;
    if (o.ip !== undefined) checkAddress(net, o.ip);
    const others = (await this.attachmentsOf(containerId)).filter((a) => a.network.id !== net.id);
    const usedIfs = new Set(others.map((a) => a.endpoint.ifName));
    let ifIndex = 0;
    while (usedIfs.has(`eth${ifIndex}`)) ifIndex++;
    const defaultRoute = !net.internal && !others.some((a) => a.endpoint.defaultRoute);

    mkdirSync(this.#dir, { recursive: true });
    const endpoint = await withLock(join(this.#dir, 'ports.lock'), async () => {
      const taken: PublishedPort[] = [];
      for (const n of await this.records.list())
        for (const ep of Object.values(n.endpoints)) if (ep.containerId !== containerId) taken.push(...ep.ports);
      const ports = await choosePorts(bindings, taken, (m) => new ConflictError('CONFLICT', m));
      let made: EndpointRecord | undefined;
      await this.records.update(net.id, (r) => {
        made = allocateEndpoint(this.#dp, r, containerId, o, { subnet, ifIndex, defaultRoute, ports });
        return { ...r, endpoints: { ...r.endpoints, [containerId]: made } };
      });
      return made!;
    });
    await this.#applyRules();
    await this.refreshHostsFiles(net.id);
    await this.#event('connect', net, { container: containerId });
    const iface: PlanInterface = {
      bridge: net.bridge,
      hostIfName: endpoint.hostIfName,
      ifName: endpoint.ifName,
      mac: endpoint.mac,
      address: `${endpoint.address}/${subnet.prefix}`,
      gateway: net.gateway,
      mtu: net.mtu,
      defaultRoute: endpoint.defaultRoute,
    };
    return iface;
  }

  /**
   * Detaches `containerId` from `network` (default: from every network): frees its address and
   * published ports, removes its port rules, deletes a leftover host end of its veth pair (the
   * kernel deletes the pair with the container's network namespace), removes the bridge when no
   * container is left on it, and updates the hosts files of its peers. Idempotent.
   */
  async releaseAttachment(containerId: string, network?: string, options: { linksGone?: boolean } = {}): Promise<void> {
    const targets =
      network === undefined ? (await this.attachmentsOf(containerId)).map((a) => a.network) : [await this.get(network)];
    let changed = false;
    for (const net of targets) {
      let gone: EndpointRecord | undefined;
      try {
        await this.records.update(net.id, (r) => {
          gone = r.endpoints[containerId];
          if (!gone) return r;
          const { [containerId]: _, ...rest } = r.endpoints;
          // After the container exited its veth pair goes with its network namespace: deleting
          // it here would only wait on the kernel's teardown of that namespace.
          if (!options.linksGone) this.#dp.deleteLink(gone.hostIfName);
          // The bridge stays until the network is removed (as docker0 does): deleting and
          // re-creating it per container costs the kernel ~50 ms each time.
          return { ...r, endpoints: rest };
        });
      } catch (e) {
        if (e instanceof NotFoundError) continue;
        throw e;
      }
      if (gone) {
        changed = true;
        await this.refreshHostsFiles(net.id);
        await this.#event('disconnect', net, { container: containerId });
      }
    }
    if (changed) await this.#applyRules();
  }

  /**
   * Connects the running container `containerId`, whose init is process `pid`, to a network, as
   * `docker network connect`: attaches it ({@link NetworkService.prepareAttachment}), then adds
   * the interface to its network namespace at once. On failure the attachment is released.
   */
  async connect(containerId: string, pid: number, options: AttachmentOptions): Promise<void> {
    const iface = await this.prepareAttachment(containerId, options);
    try {
      this.#dp.addInterface(pid, iface);
    } catch (e) {
      throw await cleanupAfterAsync(e, () => this.releaseAttachment(containerId, options.network));
    }
  }

  /**
   * Disconnects container `containerId` from `network`, as `docker network disconnect`: removes
   * its interface from the network namespace of process `pid` (when it runs), then releases the
   * attachment.
   */
  async disconnect(containerId: string, pid: number | undefined, network: string): Promise<void> {
    const net = await this.get(network);
    const att = (await this.attachmentsOf(containerId)).find((a) => a.network.id === net.id);
    if (att && pid !== undefined) {
      try {
        this.#dp.removeInterface(pid, att.endpoint.ifName);
      } catch {
        // The container exited meanwhile: its interfaces went with its namespace.
      }
    }
    await this.releaseAttachment(containerId, net.id);
  }

  /** Rebuilds this root's nf_tables table from every record, under the rules lock. */
  async #applyRules(): Promise<void> {
    await applyRules(this.#ctx.root, this.#dir, this.records, this.#dp);
  }

  // ---- names ----

  /** The peers `containerId` should resolve: every other container on its user-defined networks. */
  async peersOf(containerId: string): Promise<HostsEntry[]> {
    const out: HostsEntry[] = [];
    for (const { network } of await this.attachmentsOf(containerId)) {
      if (network.isDefault) continue;
      for (const ep of Object.values(network.endpoints)) {
        if (ep.containerId === containerId) continue;
        out.push({
          address: ep.address,
          names: [ep.name, ...ep.aliases, ep.containerId.slice(0, 12), ep.hostname].filter(Boolean),
        });
      }
    }
    return out;
  }

  /**
   * The whole hosts file of an attached container: its own addresses with its hostname, name and
   * aliases, `extraHosts`, and its peers on user-defined networks.
   */
  async hostsFileFor(containerId: string, self: Omit<HostsSelf, 'addresses'>): Promise<string> {
    const addresses = (await this.attachmentsOf(containerId)).map(({ network, endpoint }) => ({
      address: endpoint.address,
      names: network.isDefault ? [] : [endpoint.name, ...endpoint.aliases],
    }));
    return hostsFileContent({ ...self, addresses }, await this.peersOf(containerId));
  }

  /** Rewrites in place the peers section of the hosts file of every container on network `ref`. */
  async refreshHostsFiles(ref: string): Promise<void> {
    let net: NetworkRecord;
    try {
      net = await this.get(ref);
    } catch (e) {
      if (e instanceof NotFoundError) return;
      throw e;
    }
    if (net.isDefault) return;
    for (const ep of Object.values(net.endpoints))
      rewriteHostsPeers(this.#hostsPath(ep.containerId), await this.peersOf(ep.containerId));
  }
}
