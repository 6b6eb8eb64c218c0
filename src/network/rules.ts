/**
 * The nf_tables ruleset of one engine root, computed from its network records (pure).
 *
 * One table per root (`ip berth-<8 hex of the root path>`), rebuilt whole and replaced atomically
 * on every change, so rules never drift from the records and two roots never touch each other's
 * rules:
 *
 * - `postrouting` (nat, srcnat): `ip saddr <subnet> oifname != <bridge> masquerade` for each
 *   non-internal network with containers, and `ip saddr 127.0.0.0/8 oifname <bridge> masquerade`
 *   so that ports published on 127.0.0.1 (DNAT in `output`) get a source the container can answer;
 * - `prerouting` and `output` (nat, dstnat): per published port,
 *   `[ip daddr <hostIp> | fib daddr type local] <proto> dport <hostPort> dnat to <ip>:<port>`;
 * - `forward` (filter): traffic to and from non-internal bridges is accepted; internal bridges
 *   only forward among their own ports (everything crossing them is dropped).
 *
 * Ports published on 127.0.0.1 need `net.ipv4.conf.<bridge>.route_localnet = 1` (see
 * `dataplane.ts`), as Docker does with its userland proxy disabled: a DNAT in the kernel carries
 * far more than a user-space proxy would.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { NFT, expr, ipValue, match, portValue, type NftRule, type NftTable } from '../kernel/nftables.js';
import { parseCidr } from './ipam.js';

/**
 * What the ruleset reads of one network: a `NetworkRecord` has it. Declared here, at the
 * dataplane's rank, so that the rules need nothing from the service's records.
 */
export interface RulesetNetwork {
  /** The network's subnet, CIDR. */
  subnet: string;
  /** Its bridge device. */
  bridge: string;
  /** Whether it has no route out. */
  internal: boolean;
  /** Its containers: address and published ports. */
  endpoints: Record<
    string,
    {
      address: string;
      ports: readonly { containerPort: number; protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number }[];
    }
  >;
}

/** The name of the nf_tables table of the engine root `root`. */
export function tableName(root: string): string {
  return `berth-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`;
}

/** The ruleset for `networks` (only those with containers get rules); undefined when there is nothing to install. */
export function buildRuleset(name: string, networks: readonly RulesetNetwork[]): NftTable | undefined {
  const rules: NftRule[] = [];
  for (const n of networks) {
    // A network's rules stay while it exists (like its bridge), so that containers coming and
    // going change no rule unless they publish ports: every nf_tables commit costs the kernel an
    // RCU grace period.
    const eps = Object.values(n.endpoints);
    const subnet = parseCidr(n.subnet);
    if (!subnet) continue;
    if (n.internal) {
      rules.push({
        chain: 'forward',
        exprs: [...match.ifname('iif', n.bridge), ...match.ifname('oif', n.bridge, true), expr.verdict(NFT.DROP)],
      });
      rules.push({
        chain: 'forward',
        exprs: [...match.ifname('oif', n.bridge), ...match.ifname('iif', n.bridge, true), expr.verdict(NFT.DROP)],
      });
      continue;
    }
    const base = n.subnet.split('/')[0]!;
    rules.push({
      chain: 'postrouting',
      exprs: [...match.ipNet('saddr', base, subnet.prefix), ...match.ifname('oif', n.bridge, true), expr.masq()],
    });
    rules.push({
      chain: 'postrouting',
      exprs: [...match.ipNet('saddr', '127.0.0.0', 8), ...match.ifname('oif', n.bridge), expr.masq()],
    });
    rules.push({ chain: 'forward', exprs: [...match.ifname('oif', n.bridge), expr.verdict(NFT.ACCEPT)] });
    rules.push({ chain: 'forward', exprs: [...match.ifname('iif', n.bridge), expr.verdict(NFT.ACCEPT)] });
    for (const ep of eps) {
      for (const p of ep.ports) {
        const dst = p.hostIp === '' ? match.daddrLocal() : match.ipNet('daddr', p.hostIp, 32);
        const exprs = [
          ...dst,
          ...match.dport(p.protocol, p.hostPort),
          expr.immediate(ipValue(ep.address), NFT.REG_1),
          expr.immediate(portValue(p.containerPort), NFT.REG_2),
          expr.dnat(NFT.REG_1, NFT.REG_2),
        ];
        rules.push({ chain: 'prerouting', exprs });
        rules.push({ chain: 'output', exprs });
      }
    }
  }
  if (rules.length === 0) return undefined;
  return {
    family: NFT.FAMILY_IPV4,
    name,
    chains: [
      { name: 'prerouting', type: 'nat', hook: NFT.HOOK_PREROUTING, priority: -100 },
      { name: 'output', type: 'nat', hook: NFT.HOOK_OUTPUT, priority: -100 },
      { name: 'postrouting', type: 'nat', hook: NFT.HOOK_POSTROUTING, priority: 100 },
      { name: 'forward', type: 'filter', hook: NFT.HOOK_FORWARD, priority: 0 },
    ],
    rules,
  };
}
