/**
 * `Container.create` on a real engine refuses what only `start` used to refuse (malformed ports,
 * an address outside its network's subnet, ports where no interface publishes them, a NUL byte in
 * the environment, an unknown network) before any record or directory exists.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, Network } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

describe('Container.create validation on a real engine', () => {
  it('refuses bad ports, addresses, network combinations and NUL bytes with INVALID_ARGUMENT naming the field, leaving no record or directory', async () => {
    const { engine, root } = await testEngine();
    await new Network('backend', { engine }).create({ subnet: '10.89.231.0/24' });
    const dir = join(root, 'containers');
    const entries = () => (existsSync(dir) ? readdirSync(dir).sort() : []);
    const before = entries();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ports: ['99999:80'] }, 'ports.0'],
      [{ ports: ['-1'] }, 'ports.0'],
      [{ ports: ['80:99999'] }, 'ports.0'],
      [{ ports: ['tcp/sctpx'] }, 'ports.0'],
      [{ ports: ['300.1.1.1:80:80'] }, 'ports.0'],
      [{ ports: ['8080:80'], network: 'none' }, 'ports'],
      [{ ports: ['8080:80'], network: 'host' }, 'ports'],
      [{ network: 'backend', ip: '10.0.0.300' }, 'ip'],
      [{ network: 'backend', ip: '10.0.0.5' }, 'ip'],
      [{ network: 'backend', ip: '10.89.231.0' }, 'ip'],
      [{ env: { A: 'x\0y' } }, 'env.A'],
      [{ env: ['A=x\0y'] }, 'env.0'],
    ];
    for (const [opts, field] of cases) {
      await expect(
        Container.create({ image: BUSYBOX_REF, command: ['true'], name: 'refused', engine, ...opts }),
        JSON.stringify(opts),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field });
    }
    await expect(
      Container.create({ image: BUSYBOX_REF, command: ['true'], engine, network: 'nonexistent' }),
    ).rejects.toMatchObject({ code: 'NETWORK_NOT_FOUND' });
    expect(await Container.list({ all: true, engine })).toEqual([]);
    expect(entries()).toEqual(before);
    // The same address inside the subnet is taken, and the container gets it.
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], {
      engine,
      network: 'backend',
      ip: '10.89.231.77',
      name: 'refused',
    });
    expect((await c.exec(['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout).toContain('10.89.231.77/24');
  });
});
