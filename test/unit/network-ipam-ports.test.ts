import { describe, expect, it } from 'vitest';
import { formatCidr, formatIp, macForIp, parseCidr, parseIp, pickAddress, pickSubnet } from '../../src/network/ipam.js';
import { parsePortSpec, exposedToBindings, portsClash } from '../../src/network/ports.js';
import { hostsFileContent, replacePeers, PEERS_MARKER } from '../../src/network/hosts.js';
import { buildRuleset, tableName } from '../../src/network/rules.js';

describe('ipam', () => {
  it('parses and formats CIDRs', () => {
    expect(parseCidr('10.89.3.0/24', true)).toEqual({ base: parseIp('10.89.3.0'), prefix: 24 });
    expect(parseCidr('10.89.3.5/24', true)).toBeUndefined();
    expect(formatCidr(parseCidr('10.89.3.5/24')!)).toBe('10.89.3.0/24');
    expect(parseCidr('10.89.3.0/33')).toBeUndefined();
    expect(parseIp('01.2.3.4')).toBeUndefined();
  });

  it('picks the first /24 that overlaps no route and no other network', () => {
    expect(formatCidr(pickSubnet([])!)).toBe('10.89.0.0/24');
    const taken = ['10.89.0.0/24', '10.89.1.0/25', '0.0.0.0/0'].map((c) => parseCidr(c)!);
    expect(formatCidr(pickSubnet(taken)!)).toBe('10.89.2.0/24');
    expect(formatCidr(pickSubnet([parseCidr('10.89.0.0/16')!])!)).toBe('10.90.0.0/24');
  });

  it('allocates lowest free addresses within the range, skipping gateway and broadcast', () => {
    const s = parseCidr('10.89.0.0/30')!;
    const used = new Set([parseIp('10.89.0.1')!]);
    expect(formatIp(pickAddress(s, used)!)).toBe('10.89.0.2');
    used.add(parseIp('10.89.0.2')!);
    expect(pickAddress(s, used)).toBeUndefined();
    const big = parseCidr('10.89.0.0/24')!;
    expect(formatIp(pickAddress(big, new Set(), parseCidr('10.89.0.128/25'))!)).toBe('10.89.0.128');
    expect(macForIp(parseIp('10.89.0.2')!)).toBe('02:42:0a:59:00:02');
  });
});

describe('port strings', () => {
  const tcp = { protocol: 'tcp' as const };
  it.each([
    ['80', [{ containerPort: 80, ...tcp, hostIp: '', hostPort: 0 }]],
    ['8080:80', [{ containerPort: 80, ...tcp, hostIp: '', hostPort: 8080 }]],
    ['0:80', [{ containerPort: 80, ...tcp, hostIp: '', hostPort: 0 }]],
    ['127.0.0.1::5432/tcp', [{ containerPort: 5432, ...tcp, hostIp: '127.0.0.1', hostPort: 0 }]],
    ['127.0.0.1:8080:80', [{ containerPort: 80, ...tcp, hostIp: '127.0.0.1', hostPort: 8080 }]],
    ['0.0.0.0:53:53/udp', [{ containerPort: 53, protocol: 'udp', hostIp: '', hostPort: 53 }]],
    [
      '8000-8001:80-81',
      [
        { containerPort: 80, ...tcp, hostIp: '', hostPort: 8000 },
        { containerPort: 81, ...tcp, hostIp: '', hostPort: 8001 },
      ],
    ],
    ['9000-9010:80', [{ containerPort: 80, ...tcp, hostIp: '', hostPort: 9000, hostPortEnd: 9010 }]],
  ])('%s', (spec, want) => {
    expect(parsePortSpec(spec)).toEqual(want);
  });

  it.each(['', 'abc', '80/sctp', '1:2:3:4', '8000-8002:80-81', '70000', 'host:80:80', '[::1]:80:80'])(
    'rejects %j naming the field',
    (spec) => {
      expect(() => parsePortSpec(spec, 'ports[0]')).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'ports[0]' }),
      );
    },
  );

  it('publishes EXPOSE entries not published explicitly', () => {
    const explicit = parsePortSpec('8080:80');
    expect(exposedToBindings(['80/tcp', '53/udp'], explicit)).toEqual([
      { containerPort: 53, protocol: 'udp', hostIp: '', hostPort: 0 },
    ]);
  });

  it('sees clashes on the same port across addresses', () => {
    expect(
      portsClash({ hostIp: '', hostPort: 80, protocol: 'tcp' }, { hostIp: '127.0.0.1', hostPort: 80, protocol: 'tcp' }),
    ).toBe(true);
    expect(
      portsClash({ hostIp: '', hostPort: 80, protocol: 'tcp' }, { hostIp: '', hostPort: 80, protocol: 'udp' }),
    ).toBe(false);
  });
});

describe('hosts files', () => {
  it('lists own names and peers, and replaces only the peers section', () => {
    const text = hostsFileContent({ hostname: 'abc', addresses: [{ address: '10.89.0.2', names: ['web', 'www'] }] }, [
      { address: '10.89.0.3', names: ['db'] },
    ]);
    expect(text).toContain('10.89.0.2\tabc web www\n');
    expect(text).toContain(`${PEERS_MARKER}\n10.89.0.3\tdb\n`);
    const next = replacePeers(text, [{ address: '10.89.0.4', names: ['cache', 'cache'] }]);
    expect(next).toContain('10.89.0.4\tcache\n');
    expect(next).not.toContain('10.89.0.3');
    expect(next.startsWith(text.slice(0, text.indexOf(PEERS_MARKER)))).toBe(true);
  });
});

describe('ruleset', () => {
  const net = {
    id: 'a'.repeat(64),
    name: 'n',
    created: '',
    driver: 'bridge' as const,
    subnet: '10.89.0.0/24',
    gateway: '10.89.0.1',
    ipRange: null,
    internal: false,
    labels: {},
    options: {},
    bridge: 'br-aaaaaaaaaaaa',
    mtu: 1500,
    isDefault: false,
    endpoints: {
      c1: {
        containerId: 'c1',
        name: 'web',
        hostname: 'web',
        aliases: [],
        address: '10.89.0.2',
        mac: '02:42:0a:59:00:02',
        ifName: 'eth0',
        hostIfName: 'vb0',
        defaultRoute: true,
        ports: [{ containerPort: 80, protocol: 'tcp' as const, hostIp: '', hostPort: 8080 }],
      },
    },
  };
  it('has masquerade, forward and DNAT rules for a network, and keeps its own rules while it is empty', () => {
    const t = buildRuleset(tableName('/r'), [net])!;
    expect(t.name).toMatch(/^berth-[0-9a-f]{8}$/);
    expect(t.rules.filter((r) => r.chain === 'postrouting').flatMap((r) => r.exprs.map((e) => e.name))).toContain(
      'masq',
    );
    expect(t.rules.filter((r) => r.chain === 'prerouting' || r.chain === 'output')).toHaveLength(2);
    const empty = buildRuleset('x', [{ ...net, endpoints: {} }])!;
    expect(empty.rules.some((r) => r.chain === 'postrouting')).toBe(true);
    expect(empty.rules.filter((r) => r.chain === 'prerouting' || r.chain === 'output')).toHaveLength(0);
    const internal = buildRuleset('x', [{ ...net, internal: true }])!;
    expect(internal.rules.every((r) => r.chain === 'forward')).toBe(true);
  });
});
