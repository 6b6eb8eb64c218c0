/**
 * Containers on networks, on the real kernel: only this test's own bridges and namespaces and
 * loopback are ever contacted.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Container, Network } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

const SERVER = ['sh', '-c', 'while true; do echo "hello from $(hostname)" | nc -l -p 8080 >/dev/null; done'];

function fetchTcp(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => s.end());
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
    s.setTimeout(3000, () => s.destroy(new Error('timeout')));
  });
}

describe('networks', () => {
  it('containers on a user-defined network reach each other by name and alias', async () => {
    const { engine } = await testEngine();
    const net = await new Network('backend', { engine }).create();
    await using server = await Container.run(BUSYBOX_REF, SERVER, {
      engine,
      name: 'api',
      network: 'backend',
      networkAliases: ['service'],
      hostname: 'api-host',
    });
    const ip = (await net.inspect()).containers[server.ref]?.ipv4Address;
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+/);
    for (const name of ['api', 'service', server.ref.slice(0, 12)]) {
      const c = await Container.run(
        BUSYBOX_REF,
        ['sh', '-c', `for i in 1 2 3 4 5; do nc ${name} 8080 </dev/null && exit 0; sleep 0.2; done; exit 1`],
        { engine, network: 'backend' },
      );
      expect((await c.wait()).exitCode).toBe(0);
      expect(await c.logs()).toBe('hello from api-host\n');
      await c.remove();
    }
    await expect(net.remove()).rejects.toMatchObject({ code: 'IN_USE' });
  });

  it('publishes a port that answers from the host', async () => {
    const { engine } = await testEngine();
    await using server = await Container.run(BUSYBOX_REF, SERVER, {
      engine,
      ports: ['127.0.0.1::8080'],
      hostname: 'pub',
    });
    const info = await server.inspect();
    const port = info.networkSettings.ports.find((p) => p.containerPort === 8080)?.hostPort;
    expect(port).toBeGreaterThan(0);
    await expect.poll(() => fetchTcp('127.0.0.1', port!).catch(() => ''), { timeout: 5000 }).toBe('hello from pub\n');
    expect(await server.port(8080)).toBe(port);
  });

  it('shares localhost with container:<name>, and has loopback only with none', async () => {
    const { engine } = await testEngine();
    await using _pod = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'while true; do echo shared | nc -l -p 9000 >/dev/null; done'],
      { engine, name: 'pod', network: 'none' },
    );
    const c = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'for i in 1 2 3 4 5; do nc 127.0.0.1 9000 </dev/null && exit 0; sleep 0.2; done; exit 1'],
      { engine, network: 'container:pod' },
    );
    expect((await c.wait()).exitCode).toBe(0);
    expect(await c.logs()).toBe('shared\n');
  });

  it('removes links and addresses when containers and networks go', async () => {
    const { engine } = await testEngine();
    const net = await new Network('tmpnet', { engine }).create({ internal: true });
    const bridge = (await net.inspect()).bridge;
    const c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, network: 'tmpnet' });
    const { readdirSync } = await import('node:fs');
    expect(readdirSync('/sys/class/net')).toContain(bridge);
    await c.remove({ force: true });
    await net.remove();
    await expect
      .poll(() => readdirSync('/sys/class/net').filter((n) => n === bridge || n.startsWith('vb')))
      .toEqual([]);
  });
});

describe('isolation and names', () => {
  it('an internal network has no route out: a container on it cannot reach another network', async () => {
    const { engine } = await testEngine();
    await new Network('outside', { engine }).create();
    await new Network('sealed', { engine }).create({ internal: true });
    await using server = await Container.run(BUSYBOX_REF, SERVER, { engine, network: 'outside', hostname: 'out' });
    const ip = (await server.inspect()).networkSettings.ipAddress;
    const probe = [
      'sh',
      '-c',
      `ip route | grep -c default; for i in 1 2 3; do nc -w 1 ${ip} 8080 </dev/null && exit 0; sleep 0.2; done; exit 1`,
    ];
    const sealed = await Container.run(BUSYBOX_REF, probe, { engine, network: 'sealed' });
    expect((await sealed.wait()).exitCode).toBe(1);
    expect((await sealed.logs()).split('\n')[0]).toBe('0');
    await sealed.remove();
    const open = await Container.run(BUSYBOX_REF, probe, { engine, network: 'outside' });
    expect((await open.wait()).exitCode).toBe(0);
    await open.remove();
  });

  it('a container that joins a network is resolvable by its peers at once', async () => {
    const { engine } = await testEngine();
    await new Network('names', { engine }).create();
    await using a = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, network: 'names', name: 'first' });
    const t0 = Date.now();
    await using b = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
      engine,
      network: 'names',
      name: 'second',
      networkAliases: ['db'],
    });
    const hosts = await a.exec(['cat', '/etc/hosts']);
    expect(Date.now() - t0).toBeLessThan(2000);
    const bIp = (await b.inspect()).networkSettings.ipAddress;
    expect(hosts.stdout).toMatch(new RegExp(`^${bIp.replaceAll('.', '\\.')}\\s.*\\bsecond\\b.*$`, 'm'));
    expect(hosts.stdout).toMatch(/\bdb\b/);
    await b.remove({ force: true });
    expect((await a.exec(['cat', '/etc/hosts'])).stdout).not.toMatch(/\bsecond\b/);
  });
});

describe('crash cleanup', () => {
  it('frees, at the next engine start, endpoints held for containers that no longer exist', async () => {
    const { engine, root } = await testEngine();
    const { networkService } = await import('../../src/network/network.js');
    await new Network('crashy', { engine }).create();
    // As a crash between an endpoint's allocation and the container record's removal leaves it.
    await networkService(engine).prepareAttachment('d'.repeat(64), { network: 'crashy' });
    expect(Object.keys((await new Network('crashy', { engine }).inspect()).containers)).toEqual(['d'.repeat(64)]);
    const { Engine } = await import('../../src/index.js');
    const next = new Engine({ root, runRoot: `${root}/run` });
    try {
      await Container.create({ image: BUSYBOX_REF, command: ['true'], engine: next, network: 'none' });
      expect((await new Network('crashy', { engine: next }).inspect()).containers).toEqual({});
    } finally {
      next.close();
    }
  });
});

describe('IPAM across processes', () => {
  it('three processes allocating on one network at once get distinct addresses', async () => {
    const { engine, root } = await testEngine();
    await new Network('busy', { engine }).create({ subnet: '10.89.200.0/24' });
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const run = promisify(execFile);
    const outs = await Promise.all(
      ['a', 'b', 'c'].map((d) =>
        run(process.execPath, ['--import', 'tsx', 'test/fixtures/ipam-process.ts', root, 'busy', d, '5'], {
          timeout: 30_000,
        }),
      ),
    );
    const addresses = outs.flatMap((o) => JSON.parse(o.stdout) as string[]);
    expect(addresses).toHaveLength(15);
    expect(new Set(addresses).size).toBe(15);
    expect(addresses.every((a) => a.startsWith('10.89.200.'))).toBe(true);
    const { networkService } = await import('../../src/network/network.js');
    const svc = networkService(engine);
    for (const id of await svc.endpointContainerIds()) await svc.releaseAttachment(id);
  });
});

describe('connect and disconnect', () => {
  it('connects a running container to a second network with an alias and a static address, then disconnects it', async () => {
    const { engine } = await testEngine();
    await new Network('first', { engine }).create();
    const second = await new Network('second', { engine }).create({ subnet: '10.89.210.0/24' });
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, network: 'first', name: 'multi' });
    await using peer = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, network: 'second' });
    await second.connect(c, { aliases: ['other-name'], ip: '10.89.210.77' });
    const addrs = await c.exec(['ip', '-o', '-4', 'addr']);
    expect(addrs.stdout).toMatch(/eth1\s+inet 10\.89\.210\.77\/24/);
    const pinged = await peer.exec(['ping', '-c', '1', '-W', '2', 'other-name']);
    expect(pinged.exitCode).toBe(0);
    expect(
      Object.values((await second.inspect()).containers)
        .map((x) => x.name)
        .sort(),
    ).toEqual(['', 'multi'].sort());
    await second.disconnect(c);
    expect((await c.exec(['ip', '-o', '-4', 'addr'])).stdout).not.toContain('10.89.210.77');
    expect((await peer.exec(['cat', '/etc/hosts'])).stdout).not.toContain('other-name');
  });
});
