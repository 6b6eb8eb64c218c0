import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkService } from '../../src/network/service.js';
import type { NetworkDataplane } from '../../src/network/dataplane.js';
import type { NftTable } from '../../src/kernel/nftables.js';
import { tempDir } from '../helpers/tmp.js';

class FakeDataplane implements NetworkDataplane {
  calls: Array<{ op: string; args: unknown[] }> = [];
  tables = new Map<string, NftTable>();
  routes: string[] = ['10.89.0.0/24'];
  hostRoutes(): string[] {
    return this.routes;
  }
  ensureBridge(...args: unknown[]): void {
    this.calls.push({ op: 'ensureBridge', args });
  }
  deleteLink(...args: unknown[]): void {
    this.calls.push({ op: 'deleteLink', args });
  }
  applyRules(name: string, table: NftTable | undefined): void {
    if (table) this.tables.set(name, table);
    else this.tables.delete(name);
  }
  /** Set to make addInterface fail, as for a process that exited. */
  failAdd: Error | undefined;
  addInterface(...args: unknown[]): void {
    this.calls.push({ op: 'addInterface', args });
    if (this.failAdd) throw this.failAdd;
  }
  removeInterface(...args: unknown[]): void {
    this.calls.push({ op: 'removeInterface', args });
  }
}

function setup() {
  const root = tempDir('network');
  const dp = new FakeDataplane();
  const svc = new NetworkService({ root, dataplane: dp, subnetClaimsDir: join(root, 'claims') });
  return { root, dp, svc };
}

const cid = (n: number) => n.toString(16).padStart(64, '0');

describe('NetworkService', () => {
  it('creates networks on subnets that avoid host routes and each other', async () => {
    const { svc } = setup();
    const a = await svc.create('a');
    const b = await svc.create('b');
    expect(a.subnet).toBe('10.89.1.0/24');
    expect(b.subnet).toBe('10.89.2.0/24');
    expect(a.gateway).toBe('10.89.1.1');
    await expect(svc.create('a')).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
    await expect(svc.create('c', { subnet: '10.89.2.0/25' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('rejects invalid options before any side effect, naming the field', async () => {
    const { svc, dp } = setup();
    await expect(svc.create('x', { subnet: '10.1.2.3/24' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'subnet',
    });
    await expect(svc.create('x', { subnet: '10.1.2.0/24', gateway: '10.1.3.1' })).rejects.toMatchObject({
      field: 'gateway',
    });
    await expect(svc.create('x', { internal: 'yes' as unknown as boolean })).rejects.toMatchObject({
      field: 'internal',
    });
    await expect(svc.create('host')).rejects.toMatchObject({ field: 'name' });
    expect(await svc.list()).toEqual([]);
    expect(dp.calls).toEqual([]);
  });

  it('allocates distinct addresses concurrently, keeps them across restarts, frees them on release', async () => {
    const { svc, dp } = setup();
    await svc.create('n', { subnet: '10.77.0.0/24' });
    const ifs = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => svc.prepareAttachment(cid(i), { network: 'n', name: `c${i}` })),
    );
    expect(new Set(ifs.map((i) => i.address)).size).toBe(5);
    expect(ifs.map((i) => i.address).sort()).toEqual([
      '10.77.0.2/24',
      '10.77.0.3/24',
      '10.77.0.4/24',
      '10.77.0.5/24',
      '10.77.0.6/24',
    ]);
    expect(ifs[0]).toMatchObject({ ifName: 'eth0', gateway: '10.77.0.1', mtu: 1500, defaultRoute: true });
    expect(ifs[0]!.hostIfName).toMatch(/^vb[0-9a-f]{12}$/);
    expect(dp.calls.some((c) => c.op === 'ensureBridge')).toBe(true);
    await expect(svc.remove('n')).rejects.toMatchObject({ code: 'IN_USE' });
    const again = await svc.prepareAttachment(cid(1), { network: 'n' });
    expect(again.address).toBe(ifs[0]!.address);
    for (const i of [1, 2, 3, 4, 5]) await svc.releaseAttachment(cid(i));
    expect((await svc.get('n')).endpoints).toEqual({});
    expect(dp.tables.size).toBe(1); // the network's own rules stay while it exists
    await svc.remove('n');
    expect(dp.tables.size).toBe(0);
    await expect(svc.get('n')).rejects.toMatchObject({ code: 'NETWORK_NOT_FOUND' });
  });

  it('creates the default bridge on first use, publishes ports and refuses a taken one', async () => {
    const { svc, dp } = setup();
    const i = await svc.prepareAttachment(cid(1), { network: 'bridge', ports: ['127.0.0.1:0:80', '18081:81'] });
    expect(i.address).toBe('10.89.1.2/24');
    const ports = (await svc.get('bridge')).endpoints[cid(1)]!.ports;
    expect(ports[0]!.hostPort).toBeGreaterThan(0);
    expect(ports[1]!.hostPort).toBe(18081);
    expect([...dp.tables.values()][0]!.rules.some((r) => r.chain === 'prerouting')).toBe(true);
    await expect(svc.prepareAttachment(cid(2), { network: 'bridge', ports: ['18081:80'] })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(svc.prepareAttachment(cid(2), { network: 'bridge', ports: ['x'] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await svc.releaseAttachment(cid(1));
  });

  it('a second network gives eth1 without a second default route; static ips are checked', async () => {
    const { svc } = setup();
    await svc.create('one');
    await svc.create('two', { subnet: '10.66.0.0/24' });
    await svc.prepareAttachment(cid(1), { network: 'one' });
    const second = await svc.prepareAttachment(cid(1), { network: 'two', ip: '10.66.0.50' });
    expect(second).toMatchObject({ ifName: 'eth1', address: '10.66.0.50/24', defaultRoute: false });
    await expect(svc.prepareAttachment(cid(2), { network: 'two', ip: '10.66.0.50' })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(svc.prepareAttachment(cid(2), { network: 'two', ip: '10.67.0.5' })).rejects.toMatchObject({
      field: 'ip',
    });
  });

  it('rewrites peers hosts files in place on connect and disconnect', async () => {
    const { svc, root } = setup();
    await svc.create('app');
    const hosts = (id: string) => join(root, 'containers', id, 'hosts');
    await svc.prepareAttachment(cid(1), { network: 'app', name: 'web', aliases: ['www'] });
    mkdirSync(join(root, 'containers', cid(1)), { recursive: true });
    writeFileSync(hosts(cid(1)), await svc.hostsFileFor(cid(1), { hostname: 'web' }));
    const inode = statSync(hosts(cid(1))).ino;
    await svc.prepareAttachment(cid(2), { network: 'app', name: 'db' });
    expect(readFileSync(hosts(cid(1)), 'utf8')).toMatch(/10\.89\.1\.3\tdb /);
    expect(await svc.hostsFileFor(cid(2), { hostname: 'db' })).toMatch(/10\.89\.1\.2\tweb www /);
    await svc.releaseAttachment(cid(2));
    expect(readFileSync(hosts(cid(1)), 'utf8')).not.toContain('db');
    expect(statSync(hosts(cid(1))).ino).toBe(inode);
  });

  it('connect adds the interface to the process through the dataplane; disconnect removes it, then frees the address', async () => {
    const { svc, dp } = setup();
    await svc.create('app');
    await svc.connect(cid(1), 4242, { network: 'app', name: 'web' });
    const add = dp.calls.find((c) => c.op === 'addInterface')!;
    expect(add.args[0]).toBe(4242);
    expect(add.args[1]).toMatchObject({
      ifName: 'eth0',
      address: '10.89.1.2/24',
      bridge: (await svc.get('app')).bridge,
    });
    await svc.disconnect(cid(1), 4242, 'app');
    expect(dp.calls.find((c) => c.op === 'removeInterface')!.args).toEqual([4242, 'eth0']);
    expect((await svc.get('app')).endpoints).toEqual({});
  });

  it('connect releases the attachment when the interface cannot be added; disconnect of a stopped container touches no namespace', async () => {
    const { svc, dp } = setup();
    await svc.create('app');
    dp.failAdd = new Error('no such process');
    await expect(svc.connect(cid(1), 4242, { network: 'app' })).rejects.toBe(dp.failAdd);
    expect((await svc.get('app')).endpoints).toEqual({});
    dp.failAdd = undefined;
    await svc.prepareAttachment(cid(2), { network: 'app' });
    await svc.disconnect(cid(2), undefined, 'app');
    expect(dp.calls.some((c) => c.op === 'removeInterface')).toBe(false);
    expect((await svc.get('app')).endpoints).toEqual({});
  });
});
