/**
 * berth's rtnetlink and nf_tables code on the real kernel, without containers: two test network
 * namespaces (made with `ip netns add`, the only use of `ip` besides checks) joined to a berth
 * network's bridge through `NetworkService.prepareAttachment` + `setupInterfaceFromHost`.
 * Only private subnets made here and only these namespaces are used.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkService } from '../../src/network/service.js';
import { setupInterfaceFromHost } from '../../src/runtime/net-setup.js';
import { tableName } from '../../src/network/rules.js';
import { Rtnetlink } from '../../src/kernel/netlink.js';
import { tempDir } from '../helpers/tmp.js';

const isRoot = process.getuid?.() === 0;
const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const suffix = `${process.pid.toString(36)}`;
const cid = (n: number) => n.toString(16).padStart(64, '0');

describe.skipIf(!isRoot)('bridge networks on the kernel', () => {
  let root: string;
  let svc: NetworkService;
  const namespaces: string[] = [];

  beforeEach(() => {
    root = tempDir('network-it');
    svc = new NetworkService({ root, subnetClaimsDir: join(root, 'claims') });
  });

  afterEach(async () => {
    for (const ns of namespaces.splice(0)) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    for (const n of await svc.list()) {
      for (const c of Object.keys(n.endpoints)) await svc.releaseAttachment(c);
      await svc.remove(n.id);
    }
    try {
      sh('nft', ['delete', 'table', 'ip', tableName(root)]);
    } catch {
      // not there: good
    }
  });

  function netns(tag: string): { name: string; fd: number } {
    const name = `berth-t${tag}-${suffix}`;
    sh('ip', ['netns', 'add', name]);
    namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return { name, fd: openSync(`/run/netns/${name}`, 'r') };
  }

  it('links two namespaces through a bridge, with NAT and DNAT rules, and removes everything', async () => {
    const net = await svc.create(`it-${suffix}`, { subnet: '10.231.77.0/24' });
    const a = netns('a');
    const b = netns('b');
    const ia = await svc.prepareAttachment(cid(1), { network: net.name, name: 'a', ports: ['127.0.0.1:0:7000'] });
    const ib = await svc.prepareAttachment(cid(2), { network: net.name, name: 'b' });
    try {
      setupInterfaceFromHost(ia, a.fd);
      setupInterfaceFromHost(ib, b.fd);
    } finally {
      closeSync(a.fd);
      closeSync(b.fd);
    }
    const nl = Rtnetlink.open();
    try {
      const br = nl.getLink(net.bridge)!;
      expect(br).toMatchObject({ kind: 'bridge', up: true });
      expect(nl.listAddresses(net.bridge)).toEqual([
        expect.objectContaining({ address: '10.231.77.1', prefixLen: 24 }),
      ]);
      expect(nl.getLink(ia.hostIfName)).toMatchObject({ master: br.index, up: true });
    } finally {
      nl.close();
    }
    expect(sh('ip', ['-n', a.name, '-4', 'addr', 'show', 'eth0'])).toContain('10.231.77.2/24');
    expect(sh('ip', ['-n', a.name, 'route'])).toContain('default via 10.231.77.1 dev eth0');
    expect(sh('ip', ['-n', a.name, 'link', 'show', 'eth0'])).toContain(ia.mac);

    // ICMP and TCP between the namespaces, with busybox.
    sh('ip', ['netns', 'exec', b.name, '/bin/busybox', 'ping', '-c', '1', '-W', '2', '10.231.77.2']);
    const server = spawn('ip', ['netns', 'exec', a.name, '/bin/busybox', 'nc', '-l', '-p', '7000'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let got = '';
    server.stdout.on('data', (d) => (got += String(d)));
    await new Promise((r) => setTimeout(r, 200));
    execFileSync('ip', ['netns', 'exec', b.name, '/bin/busybox', 'nc', '-w', '2', '10.231.77.2', '7000'], {
      input: 'hello\n',
    });
    await new Promise<void>((r) => server.once('exit', () => r()));
    expect(got).toBe('hello\n');

    const rules = sh('nft', ['list', 'table', 'ip', tableName(root)]);
    expect(rules).toContain(`ip saddr 10.231.77.0/24 oifname != "${net.bridge}" masquerade`);
    const hostPort = (await svc.get(net.id)).endpoints[cid(1)]!.ports[0]!.hostPort;
    expect(rules).toContain(`ip daddr 127.0.0.1 tcp dport ${hostPort} dnat to 10.231.77.2:7000`);

    // Tear down: namespaces first (their veth pairs go with them), then the attachments.
    for (const ns of namespaces.splice(0)) sh('ip', ['netns', 'del', ns]);
    await svc.releaseAttachment(cid(1));
    await svc.releaseAttachment(cid(2));
    // The bridge and the network's rules stay until the network is removed.
    expect(existsSync(`/sys/class/net/${net.bridge}`)).toBe(true);
    await svc.remove(net.id);
    expect(existsSync(`/sys/class/net/${net.bridge}`)).toBe(false);
    expect(existsSync(`/sys/class/net/${ia.hostIfName}`)).toBe(false);
    expect(() => sh('nft', ['list', 'table', 'ip', tableName(root)])).toThrow();
  });
});
