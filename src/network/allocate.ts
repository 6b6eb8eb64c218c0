/**
 * Address allocation for the network service: a subnet for a new network (claimed host-wide),
 * and an address, MAC and interface names for a container's endpoint on a network.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ConflictError } from '../errors.js';
import type { NetworkDataplane } from './dataplane.js';
import {
  formatCidr,
  formatIp,
  macForIp,
  overlaps,
  parseCidr,
  parseIp,
  pickAddress,
  pickSubnet,
  type Cidr,
} from './ipam.js';
import type { AttachmentOptions } from './options.js';
import type { PublishedPort } from './ports.js';
import type { EndpointRecord, NetworkRecord } from './record.js';
import type { SubnetClaims } from './subnet-claims.js';

/**
 * Claims the subnet of network `id`: `fixed` when given (refused when it overlaps another
 * network's), else a free subnet of the default pools that no host route uses.
 *
 * @throws ConflictError `CONFLICT` when the subnet overlaps another network's or no default subnet is left.
 */
export function chooseSubnet(subnets: SubnetClaims, dp: NetworkDataplane, fixed: Cidr | undefined, id: string): Cidr {
  if (fixed) {
    if (!subnets.claim(fixed, id))
      throw new ConflictError(
        'CONFLICT',
        `subnet ${formatCidr(fixed)} overlaps another network; choose another subnet`,
      );
    const taken = subnets.list().filter((c) => !(c.base === fixed.base && c.prefix === fixed.prefix));
    if (taken.some((c) => overlaps(c, fixed))) {
      subnets.unclaim(formatCidr(fixed), id);
      throw new ConflictError(
        'CONFLICT',
        `subnet ${formatCidr(fixed)} overlaps another network; choose another subnet`,
      );
    }
    return fixed;
  }
  const routes = dp
    .hostRoutes()
    .map((r) => parseCidr(r))
    .filter((c): c is Cidr => c !== undefined);
  for (let attempt = 0; attempt < 64; attempt++) {
    const c = pickSubnet([...routes, ...subnets.list()]);
    if (!c) break;
    if (subnets.claim(c, id)) return c;
  }
  throw new ConflictError(
    'CONFLICT',
    'no free subnet is left in the default pools; give a subnet or remove unused networks',
  );
}

/** Where a new endpoint goes, as `prepareAttachment` works it out before it takes the record's lock. */
export interface EndpointPlacement {
  /** The network's subnet. */
  subnet: Cidr;
  /** The interface name in the container when it has none on this network yet: `eth<ifIndex>`. */
  ifIndex: number;
  /** Whether the default route goes through this network when the endpoint is new. */
  defaultRoute: boolean;
  /** The host ports published for it, already chosen. */
  ports: PublishedPort[];
}

/**
 * Under network record `r`'s lock: the endpoint of `containerId` on it (its previous address is
 * kept when still free, its previous host link deleted), with the bridge made sure to exist.
 *
 * @throws ConflictError `CONFLICT` when the address asked for is taken or none is left.
 */
export function allocateEndpoint(
  dp: NetworkDataplane,
  r: NetworkRecord,
  containerId: string,
  o: Pick<AttachmentOptions, 'ip' | 'name' | 'hostname' | 'aliases' | 'mac'>,
  { subnet, ifIndex, defaultRoute, ports }: EndpointPlacement,
): EndpointRecord {
  const prev = r.endpoints[containerId];
  const used = new Set<number>([parseIp(r.gateway)!]);
  for (const ep of Object.values(r.endpoints)) if (ep.containerId !== containerId) used.add(parseIp(ep.address)!);
  let ip: number | undefined;
  if (o.ip !== undefined) {
    ip = parseIp(o.ip)!;
    if (used.has(ip)) throw new ConflictError('CONFLICT', `address ${o.ip} is already in use on network '${r.name}'`);
  } else if (prev && !used.has(parseIp(prev.address)!)) {
    ip = parseIp(prev.address)!;
  } else {
    ip = pickAddress(subnet, used, r.ipRange ? parseCidr(r.ipRange) : subnet);
    if (ip === undefined)
      throw new ConflictError('CONFLICT', `no free address is left on network '${r.name}' (${r.subnet})`);
  }
  if (prev && prev.hostIfName) dp.deleteLink(prev.hostIfName);
  const made: EndpointRecord = {
    containerId,
    name: (o.name ?? '').replace(/^\//, ''),
    hostname: o.hostname ?? containerId.slice(0, 12),
    aliases: o.aliases ?? [],
    address: formatIp(ip),
    mac: (o.mac ?? macForIp(ip)).toLowerCase(),
    ifName: prev?.ifName ?? `eth${ifIndex}`,
    hostIfName: `vb${randomBytes(6).toString('hex')}`,
    ports,
    defaultRoute: prev?.defaultRoute ?? defaultRoute,
  };
  dp.ensureBridge(r.bridge, r.gateway, subnet.prefix, r.mtu);
  return made;
}
