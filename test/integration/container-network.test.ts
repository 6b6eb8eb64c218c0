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
    await using server = await Container.run(BUSYBOX_REF, SERVER, { engine, name: 'api', network: 'backend', networkAliases: ['service'], hostname: 'api-host' });
    const ip = (await net.inspect()).containers[server.ref]?.ipv4Address;
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+/);
    for (const name of ['api', 'service', server.ref.slice(0, 12)]) {
      const c = await Container.run(BUSYBOX_REF, ['sh', '-c', `for i in 1 2 3 4 5; do nc ${name} 8080 </dev/null && exit 0; sleep 0.2; done; exit 1`], { engine, network: 'backend' });
      expect((await c.wait()).exitCode).toBe(0);
      expect(await c.logs()).toBe('hello from api-host\n');
      await c.remove();
    }
    await expect(net.remove()).rejects.toMatchObject({ code: 'IN_USE' });
  });

  it('publishes a port that answers from the host', async () => {
    const { engine } = await testEngine();
    await using server = await Container.run(BUSYBOX_REF, SERVER, { engine, ports: ['127.0.0.1::8080'], hostname: 'pub' });
    const info = await server.inspect();
    const port = info.networkSettings.ports.find((p) => p.containerPort === 8080)?.hostPort;
    expect(port).toBeGreaterThan(0);
    await expect.poll(() => fetchTcp('127.0.0.1', port!).catch(() => ''), { timeout: 5000 }).toBe('hello from pub\n');
    expect(await server.port(8080)).toBe(port);
  });

  it('shares localhost with container:<name>, and has loopback only with none', async () => {
    const { engine } = await testEngine();
    await using server = await Container.run(BUSYBOX_REF, ['sh', '-c', 'while true; do echo shared | nc -l -p 9000 >/dev/null; done'], { engine, name: 'pod', network: 'none' });
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'for i in 1 2 3 4 5; do nc 127.0.0.1 9000 </dev/null && exit 0; sleep 0.2; done; exit 1'], { engine, network: 'container:pod' });
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
    await expect.poll(() => readdirSync('/sys/class/net').filter((n) => n === bridge || n.startsWith('vb'))).toEqual([]);
  });
});
