/**
 * IPv4 address management, as pure functions over numbers: CIDR parsing, overlap checks, the
 * choice of a free subnet from a pool, and the choice of a free address in a subnet.
 *
 * Policy (see README.md in this folder): default subnets are /24s carved from `10.89.0.0/16`
 * (then `10.90.0.0/16`, …), skipping any subnet that overlaps another network's or a route of the
 * host's main table; the gateway is the first host address; container addresses are handed out
 * lowest-free-first from `ipRange` (or the whole subnet), never the network, gateway or broadcast
 * address.
 *
 * @module
 */

/** A parsed IPv4 CIDR block. */
export interface Cidr {
  /** The network address as an unsigned 32-bit number (host bits cleared). */
  base: number;
  /** The prefix length, 0–32. */
  prefix: number;
}

/** Parses dotted IPv4 text into an unsigned 32-bit number; undefined when malformed. */
export function parseIp(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const n = Number(m[i]);
    if (n > 255 || (m[i]!.length > 1 && m[i]!.startsWith('0'))) return undefined;
    v = v * 256 + n;
  }
  return v;
}

/** Formats an unsigned 32-bit number as dotted IPv4 text. */
export function formatIp(v: number): string {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

/** The netmask of a prefix length as an unsigned 32-bit number. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses `a.b.c.d/n`. With `strict`, host bits must be zero (as Docker requires of `--subnet`);
 * otherwise they are cleared. Undefined when malformed.
 */
export function parseCidr(text: string, strict = false): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const ip = parseIp(m[1]!);
  const prefix = Number(m[2]);
  if (ip === undefined || prefix > 32) return undefined;
  const base = (ip & maskOf(prefix)) >>> 0;
  if (strict && base !== ip) return undefined;
  return { base, prefix };
}

/** Formats a CIDR block as `a.b.c.d/n`. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

/** The number of addresses in a block. */
export function sizeOf(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** The last address of a block (the broadcast address). */
export function lastOf(c: Cidr): number {
  return c.base + sizeOf(c) - 1;
}

/** Whether address `ip` lies inside block `c`. */
export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip <= lastOf(c);
}

/** Whether two blocks share any address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= lastOf(b) && b.base <= lastOf(a);
}

/** Default pools of subnets: `10.89.0.0/16` onwards, carved into /24s. */
export const DEFAULT_POOLS: readonly { base: string; size: number }[] = [
  { base: '10.89.0.0/16', size: 24 },
  { base: '10.90.0.0/16', size: 24 },
  { base: '10.91.0.0/16', size: 24 },
];

/**
 * The first /`size` block of the pools that overlaps none of `taken` (other networks' subnets
 * and the host's routes; a default route `0.0.0.0/0` is ignored, it overlaps everything).
 *
 * @returns undefined when the pools are exhausted.
 */
export function pickSubnet(
  taken: readonly Cidr[],
  pools: readonly { base: string; size: number }[] = DEFAULT_POOLS,
): Cidr | undefined {
  const blockers = taken.filter((c) => c.prefix > 0);
  for (const pool of pools) {
    const p = parseCidr(pool.base);
    if (!p || pool.size < p.prefix) continue;
    const step = 2 ** (32 - pool.size);
    for (let base = p.base; base <= lastOf(p); base += step) {
      const cand = { base, prefix: pool.size };
      if (!blockers.some((t) => overlaps(t, cand))) return cand;
    }
  }
  return undefined;
}

/** The default gateway of a subnet: its first host address. */
export function defaultGateway(subnet: Cidr): number {
  return subnet.prefix >= 31 ? subnet.base : subnet.base + 1;
}

/**
 * The lowest address of `range` (default: the whole subnet) that is a host address of `subnet`
 * and not in `used` (which should hold the gateway).
 *
 * @returns undefined when every address is taken.
 */
export function pickAddress(subnet: Cidr, used: ReadonlySet<number>, range: Cidr = subnet): number | undefined {
  const first = Math.max(range.base, subnet.base + (subnet.prefix >= 31 ? 0 : 1));
  const last = Math.min(lastOf(range), lastOf(subnet) - (subnet.prefix >= 31 ? 0 : 1));
  for (let ip = first; ip <= last; ip++) if (!used.has(ip)) return ip;
  return undefined;
}

/** Whether `ip` may be given to a container of `subnet`: inside it, not its network or broadcast address. */
export function isHostAddress(subnet: Cidr, ip: number): boolean {
  if (!contains(subnet, ip)) return false;
  if (subnet.prefix >= 31) return true;
  return ip !== subnet.base && ip !== lastOf(subnet);
}

/** A MAC address derived from an IPv4 address, as Docker does: `02:42:` followed by the 4 bytes. */
export function macForIp(ip: number): string {
  return [
    '02',
    '42',
    ...[(ip >>> 24) & 255, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0')),
  ].join(':');
}
