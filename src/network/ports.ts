/**
 * Published ports: Docker's `ports` strings (`'8080:80'`, `'127.0.0.1::5432/tcp'`, `'80'`,
 * `'8000-8001:80-81'`, `'53:53/udp'`) parsed into {@link PortBinding}s, image `EXPOSE` entries
 * turned into bindings for `publishAll`, and the choice of free host ports.
 *
 * @module
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { parseIp } from './ipam.js';

/** Transport protocols a port can be published for. */
export const PORT_PROTOCOLS = ['tcp', 'udp'] as const;

/** A port protocol. */
export type PortProtocol = (typeof PORT_PROTOCOLS)[number];

const port = z.number().int().min(1).max(65535);

/** Schema of one {@link PortBinding}. */
export const portBindingSchema = z.strictObject({
  containerPort: port,
  protocol: z.enum(PORT_PROTOCOLS),
  hostIp: z.string().refine((s) => s === '' || parseIp(s) !== undefined, 'expected an IPv4 address or an empty string'),
  hostPort: z.number().int().min(0).max(65535),
  hostPortEnd: port.optional(),
});

/**
 * One container port to publish on the host.
 *
 * @example
 * ```ts
 * parsePortSpec('127.0.0.1::5432/tcp'); // [{ containerPort: 5432, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0 }]
 * ```
 */
export interface PortBinding {
  /** The port inside the container. */
  containerPort: number;
  /** `tcp` or `udp`. */
  protocol: PortProtocol;
  /** The host address to publish on; `''` means every address of the host (`0.0.0.0`). */
  hostIp: string;
  /** The host port; 0 means pick a free one (within `hostPort`–`hostPortEnd` when a range is given). */
  hostPort: number;
  /** The end of a host port range to pick from; absent for a single port. */
  hostPortEnd?: number;
}

/** A binding with its host port chosen, as recorded and reported by `inspect` and `port()`. */
export interface PublishedPort {
  /** The port inside the container. */
  containerPort: number;
  /** `tcp` or `udp`. */
  protocol: PortProtocol;
  /** The host address; `''` means every address of the host. */
  hostIp: string;
  /** The host port in use. */
  hostPort: number;
}

function parseRange(text: string, field: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || lo < 1 || hi > 65535 || hi < lo)
    throw new InvalidArgumentError(field, `'${text}' is not a port or a port range (1-65535)`);
  return [lo, hi];
}

/**
 * Parses one Docker port string: `[hostIp:][hostPort:]containerPort[/proto]`, where ports may be
 * ranges. Equal-length host and container ranges map one to one; a host range with one container
 * port means "a free port of that range".
 *
 * @param field - The option's name, for errors (e.g. `ports[0]`).
 * @throws InvalidArgumentError naming `field`.
 */
export function parsePortSpec(spec: string, field = 'ports'): PortBinding[] {
  if (typeof spec !== 'string' || spec === '')
    throw new InvalidArgumentError(field, 'expected a port such as "8080:80" or "127.0.0.1::5432/tcp"');
  let rest = spec;
  let protocol: PortProtocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw new InvalidArgumentError(field, `'${spec}': protocol must be tcp or udp`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  if (rest.startsWith('[')) throw new InvalidArgumentError(field, `'${spec}': IPv6 host addresses are not supported`);
  const parts = rest.split(':');
  if (parts.length > 3) throw new InvalidArgumentError(field, `'${spec}' has too many ':'`);
  const containerText = parts[parts.length - 1]!;
  const hostPortText = parts.length >= 2 ? parts[parts.length - 2]! : '';
  const hostIp = parts.length === 3 ? parts[0]! : '';
  if (hostIp !== '' && hostIp !== '0.0.0.0' && parseIp(hostIp) === undefined) {
    throw new InvalidArgumentError(field, `'${spec}': '${hostIp}' is not an IPv4 address`);
  }
  const ip = hostIp === '0.0.0.0' ? '' : hostIp;
  const [cLo, cHi] = parseRange(containerText, field);
  if (hostPortText === '') {
    const out: PortBinding[] = [];
    for (let p = cLo; p <= cHi; p++) out.push({ containerPort: p, protocol, hostIp: ip, hostPort: 0 });
    return out;
  }
  if (hostPortText === '0') {
    if (cLo !== cHi) throw new InvalidArgumentError(field, `'${spec}': host port 0 takes a single container port`);
    return [{ containerPort: cLo, protocol, hostIp: ip, hostPort: 0 }];
  }
  const [hLo, hHi] = parseRange(hostPortText, field);
  if (cLo === cHi && hHi > hLo) return [{ containerPort: cLo, protocol, hostIp: ip, hostPort: hLo, hostPortEnd: hHi }];
  if (hHi - hLo !== cHi - cLo)
    throw new InvalidArgumentError(field, `'${spec}': the host and container port ranges differ in length`);
  const out: PortBinding[] = [];
  for (let i = 0; i <= cHi - cLo; i++) out.push({ containerPort: cLo + i, protocol, hostIp: ip, hostPort: hLo + i });
  return out;
}

/** Parses a list of port strings (or already structured bindings, which are validated). */
export function parsePorts(specs: ReadonlyArray<string | PortBinding>, field = 'ports'): PortBinding[] {
  const out: PortBinding[] = [];
  specs.forEach((s, i) => {
    if (typeof s === 'string') {
      out.push(...parsePortSpec(s, `${field}[${i}]`));
      return;
    }
    const r = portBindingSchema.safeParse(s);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new InvalidArgumentError(
        `${field}[${i}]${issue?.path.length ? `.${issue.path.join('.')}` : ''}`,
        issue?.message ?? 'invalid port binding',
      );
    }
    out.push(r.data as PortBinding);
  });
  return out;
}

/**
 * Bindings for `publishAll`: each image `EXPOSE` entry (`'80/tcp'`, `'53/udp'`, `'8000-8001'`)
 * published on a free host port of every address, unless `explicit` already publishes it.
 */
export function exposedToBindings(
  exposedPorts: readonly string[],
  explicit: readonly PortBinding[] = [],
): PortBinding[] {
  const out: PortBinding[] = [];
  for (const e of exposedPorts) {
    for (const b of parsePortSpec(e, 'exposedPorts')) {
      if (explicit.some((x) => x.containerPort === b.containerPort && x.protocol === b.protocol)) continue;
      out.push(b);
    }
  }
  return out;
}

/** Whether `hostIp:port/protocol` can be bound on the host right now (a bind test). */
export function canBind(hostIp: string, port: number, protocol: PortProtocol): Promise<boolean> {
  const host = hostIp === '' ? '0.0.0.0' : hostIp;
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', () => {
        s.close();
        resolve(false);
      });
      s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(true)));
      return;
    }
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the kernel considers free on `hostIp` for `protocol` (bind to port 0, read it, close). */
export function ephemeralPort(hostIp: string, protocol: PortProtocol): Promise<number> {
  const host = hostIp === '' ? '0.0.0.0' : hostIp;
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.bind({ address: host, port: 0, exclusive: true }, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

/** Whether two published ports clash: same protocol and port, on the same address or one of them on every address. */
export function portsClash(
  a: Pick<PublishedPort, 'hostIp' | 'hostPort' | 'protocol'>,
  b: Pick<PublishedPort, 'hostIp' | 'hostPort' | 'protocol'>,
): boolean {
  return (
    a.protocol === b.protocol &&
    a.hostPort === b.hostPort &&
    (a.hostIp === b.hostIp || a.hostIp === '' || b.hostIp === '')
  );
}

/**
 * Chooses host ports for `bindings`: keeps fixed ones (checking they clash with nothing in
 * `taken` and can be bound), and picks free ones for port 0 or ranges.
 *
 * @param taken - Ports already published (by this root's other containers); they are not bound
 * on the host (published ports are DNAT rules), so a bind test alone would not see them.
 * @param conflict - Makes the error thrown when a fixed port clashes or no free port is left.
 */
export async function choosePorts(
  bindings: readonly PortBinding[],
  taken: readonly PublishedPort[],
  conflict: (message: string) => Error,
): Promise<PublishedPort[]> {
  const used = [...taken];
  const out: PublishedPort[] = [];
  for (const b of bindings) {
    let chosen: number | undefined;
    if (b.hostPort !== 0 && b.hostPortEnd === undefined) {
      const cand = { hostIp: b.hostIp, hostPort: b.hostPort, protocol: b.protocol };
      if (used.some((u) => portsClash(u, cand)))
        throw conflict(
          `port ${b.hostIp || '0.0.0.0'}:${b.hostPort}/${b.protocol} is already published by another container`,
        );
      if (!(await canBind(b.hostIp, b.hostPort, b.protocol)))
        throw conflict(`port ${b.hostIp || '0.0.0.0'}:${b.hostPort}/${b.protocol} is already in use on the host`);
      chosen = b.hostPort;
    } else if (b.hostPortEnd !== undefined) {
      for (let p = b.hostPort; p <= b.hostPortEnd && chosen === undefined; p++) {
        const cand = { hostIp: b.hostIp, hostPort: p, protocol: b.protocol };
        if (!used.some((u) => portsClash(u, cand)) && (await canBind(b.hostIp, p, b.protocol))) chosen = p;
      }
      if (chosen === undefined) throw conflict(`no free port in ${b.hostPort}-${b.hostPortEnd}/${b.protocol}`);
    } else {
      for (let attempt = 0; attempt < 50 && chosen === undefined; attempt++) {
        const p = await ephemeralPort(b.hostIp, b.protocol);
        if (!used.some((u) => portsClash(u, { hostIp: b.hostIp, hostPort: p, protocol: b.protocol }))) chosen = p;
      }
      if (chosen === undefined) throw conflict(`could not find a free host port for ${b.containerPort}/${b.protocol}`);
    }
    const pub: PublishedPort = {
      containerPort: b.containerPort,
      protocol: b.protocol,
      hostIp: b.hostIp,
      hostPort: chosen,
    };
    used.push(pub);
    out.push(pub);
  }
  return out;
}
