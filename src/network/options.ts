/**
 * The options of the network service's calls (`create`, `prepareAttachment`), their schemas,
 * and the checks they share.
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { contains, isHostAddress, parseCidr, parseIp, type Cidr } from './ipam.js';
import type { PortBinding } from './ports.js';
import type { NetworkRecord } from './record.js';

/** Name of the default network. */
export const DEFAULT_NETWORK = 'bridge';

/** Default MTU of new networks. */
export const DEFAULT_MTU = 1500;

const RESERVED = new Set(['host', 'none', 'default']);
const MTU_OPTION = 'com.docker.network.driver.mtu';

/** A network name (and a network alias), as Docker allows them. */
export const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** Options of `Network.create` (and `NetworkService.create`). */
export interface NetworkCreateOptions {
  /** IPv4 subnet in CIDR form, e.g. `10.89.5.0/24`. Default: a free /24 of `10.89.0.0/16` onwards. */
  subnet?: string;
  /** Gateway (the bridge's address). Default: the first host address of the subnet. */
  gateway?: string;
  /** Sub-range of the subnet that container addresses are picked from. Default: the whole subnet. */
  ipRange?: string;
  /** No route out: containers reach each other only. Default false. */
  internal?: boolean;
  /** Labels. */
  labels?: Record<string, string>;
  /** Driver options; `com.docker.network.driver.mtu` sets the MTU. */
  options?: Record<string, string>;
}

/** Schema of {@link NetworkCreateOptions}. */
export const networkCreateSchema = z.strictObject({
  subnet: z
    .string()
    .refine((s) => parseCidr(s, true) !== undefined, 'expected an IPv4 network such as 10.89.5.0/24 (host bits zero)')
    .optional(),
  gateway: z
    .string()
    .refine((s) => parseIp(s) !== undefined, 'expected an IPv4 address')
    .optional(),
  ipRange: z
    .string()
    .refine((s) => parseCidr(s, true) !== undefined, 'expected an IPv4 range such as 10.89.5.128/25')
    .optional(),
  internal: z.boolean().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  options: z.record(z.string(), z.string()).optional(),
});

/** Options of `NetworkService.prepareAttachment`. */
export interface AttachmentOptions {
  /** Network name, id or id prefix; `bridge` is the default network, created on first use. */
  network: string;
  /** The container's name, for peers' hosts files. */
  name?: string;
  /** The container's hostname (default: the first 12 digits of its id). */
  hostname?: string;
  /** Extra names on this network. */
  aliases?: string[];
  /** A fixed IPv4 address in the network's subnet. */
  ip?: string;
  /** A fixed MAC address (default: derived from the IPv4 address, `02:42:…`). */
  mac?: string;
  /** Ports to publish: Docker strings or parsed bindings. */
  ports?: Array<string | PortBinding>;
  /** Publish every port of `exposedPorts` on a free host port. */
  publishAll?: boolean;
  /** The image's `EXPOSE` entries (`80/tcp`), for `publishAll`. */
  exposedPorts?: string[];
}

/** Schema of {@link AttachmentOptions}. */
export const attachmentSchema = z.strictObject({
  network: z.string().min(1),
  name: z.string().optional(),
  hostname: z.string().optional(),
  aliases: z.array(z.string().regex(NETWORK_NAME, 'expected a name of letters, digits, _ . -')).optional(),
  ip: z
    .string()
    .refine((s) => parseIp(s) !== undefined, 'expected an IPv4 address')
    .optional(),
  mac: z
    .string()
    .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'expected a MAC address aa:bb:cc:dd:ee:ff')
    .optional(),
  ports: z.array(z.union([z.string(), z.object({}).passthrough()])).optional(),
  publishAll: z.boolean().optional(),
  exposedPorts: z.array(z.string()).optional(),
});

/** Throws InvalidArgumentError naming `ip` unless `ip` is a host address of `net`'s subnet. */
export function checkAddress(net: NetworkRecord, ip: string): void {
  const subnet = parseCidr(net.subnet)!;
  const addr = parseIp(ip);
  if (addr === undefined || !isHostAddress(subnet, addr)) {
    throw new InvalidArgumentError(
      'ip',
      `${ip} is not a host address of network '${net.name}' (${net.subnet}); choose one inside it`,
    );
  }
}

/** The InvalidArgumentError of a failed parse, naming the first issue's field under `prefix`. */
export function invalid(e: z.ZodError, prefix = ''): InvalidArgumentError {
  const issue = e.issues[0];
  const field = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
  return new InvalidArgumentError(field, issue?.message ?? 'invalid value', { cause: e });
}

/** What {@link parseCreateOptions} returns. */
export interface ParsedCreateOptions {
  /** The options, checked. */
  o: z.infer<typeof networkCreateSchema>;
  /** The network's MTU. */
  mtu: number;
  /** The subnet given, if any. */
  fixed: Cidr | undefined;
}

/**
 * Checks the name and options of a network to create (`isDefault`: it is the engine's default
 * network): the parsed options, the MTU, and the fixed subnet when one is given.
 *
 * @throws InvalidArgumentError naming the field.
 */
export function parseCreateOptions(
  name: string,
  options: NetworkCreateOptions,
  isDefault: boolean,
): ParsedCreateOptions {
  if (typeof name !== 'string' || !NETWORK_NAME.test(name))
    throw new InvalidArgumentError('name', `'${String(name)}' is not a valid network name (letters, digits, _ . -)`);
  if (RESERVED.has(name) || (name === DEFAULT_NETWORK && !isDefault)) {
    throw new InvalidArgumentError('name', `'${name}' is a predefined network and cannot be created`);
  }
  const parsed = networkCreateSchema.safeParse(options);
  if (!parsed.success) throw invalid(parsed.error);
  const o = parsed.data;
  let mtu = DEFAULT_MTU;
  if (o.options?.[MTU_OPTION] !== undefined) {
    mtu = Number(o.options[MTU_OPTION]);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
      throw new InvalidArgumentError(`options.${MTU_OPTION}`, 'expected an MTU between 68 and 65535');
  }
  let fixed: Cidr | undefined;
  if (o.subnet !== undefined) fixed = parseCidr(o.subnet, true)!;
  if (o.gateway !== undefined && fixed === undefined)
    throw new InvalidArgumentError('gateway', 'a gateway needs a subnet');
  if (o.ipRange !== undefined && fixed === undefined)
    throw new InvalidArgumentError('ipRange', 'an ip range needs a subnet');
  if (fixed && o.gateway !== undefined && !isHostAddress(fixed, parseIp(o.gateway)!))
    throw new InvalidArgumentError('gateway', `${o.gateway} is not a host address of ${o.subnet}`);
  if (fixed && o.ipRange !== undefined) {
    const r = parseCidr(o.ipRange, true)!;
    if (!contains(fixed, r.base) || r.prefix < fixed.prefix)
      throw new InvalidArgumentError('ipRange', `${o.ipRange} is not inside ${o.subnet}`);
  }
  return { o, mtu, fixed };
}
