/**
 * `ContainerService.create` refuses malformed options with `INVALID_ARGUMENT` naming the field
 * before anything happens: no image is looked up or pulled, no record, name or directory is made.
 * The manager runs against fakes (no kernel, no root needed).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ContainerService, type ContainerNetworks } from '../../src/container/service.js';
import type { ContainerCreateOptions } from '../../src/container/options.js';
import { containerRecordSchema } from '../../src/container/record.js';
import { Container, Engine } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { fakeVolumes } from '../helpers/fake-volumes.js';

const LAYER_A = `sha256:${'a'.repeat(64)}`;
const LAYER_B = `sha256:${'b'.repeat(64)}`;

function setup(networks: Partial<ContainerNetworks> = {}) {
  const root = tempDir('create-validation');
  const looked: string[] = [];
  const svc = new ContainerService({
    root,
    zygote: {
      start: async () => {
        throw new Error('not started in these tests');
      },
      onExit: () => () => undefined,
      hold: () => () => undefined,
      exec: async () => {
        throw new Error('no exec');
      },
      pid: undefined,
    },
    networks: {
      prepareAttachment: async () => {
        throw new Error('not attached in these tests');
      },
      releaseAttachment: async () => undefined,
      hostsFileFor: async () => '',
      attachmentsOf: async () => [],
      ...networks,
    },
    volumes: fakeVolumes(),
    appendEvent: async () => undefined,
    resolveImage: async (ref) => {
      looked.push(ref);
      return { id: 'sha256:abc', config: { cmd: ['sh'], env: [] }, layers: [LAYER_A] };
    },
    layerDir: (diffId) => `/layers/${diffId.slice(7)}/fs`,
    commitImage: async () => {
      throw new Error('no commit in these tests');
    },
    pullImage: async (ref) => {
      looked.push(`pull ${ref}`);
      return false;
    },
  });
  /** Entries of the root's containers directory (none when it was never made). */
  const entries = () => (existsSync(join(root, 'containers')) ? readdirSync(join(root, 'containers')) : []);
  return { svc, root, looked, entries };
}

/** Each malformed input, the field its error must name, and (optionally) what its message must say. */
const REFUSED: Array<[string, Partial<ContainerCreateOptions>, string, RegExp?]> = [
  ['a host port above 65535', { ports: ['99999:80'] }, 'ports.0', /port/],
  ['a negative port', { ports: ['-1'] }, 'ports.0'],
  ['a container port above 65535', { ports: ['80:99999'] }, 'ports.0'],
  ['an unknown protocol', { ports: ['tcp/sctpx'] }, 'ports.0', /tcp or udp/],
  ['a host address that is not an address', { ports: ['300.1.1.1:80:80'] }, 'ports.0', /300\.1\.1\.1/],
  ['the second of two ports', { ports: ['8080:80', '1:2:3:4'] }, 'ports.1'],
  ['ports with network none', { ports: ['8080:80'], network: 'none' }, 'ports', /none/],
  ['ports with network host', { ports: ['8080:80'], network: 'host' }, 'ports', /host/],
  [
    'ports with the network of another container',
    { ports: ['8080:80'], network: 'container:web' },
    'ports',
    /container:web/,
  ],
  ['publishAll with network none', { publishAll: true, network: 'none' }, 'publishAll'],
  ['a static address with a fourth byte of 300', { ip: '10.0.0.300', network: 'backend' }, 'ip'],
  ['a static address without a network to take it', { ip: '10.0.0.3', network: 'none' }, 'ip'],
  ['a static address on the default bridge', { ip: '10.0.0.3' }, 'ip', /user-defined network/],
  ['a MAC address with network host', { mac: '02:42:0a:00:00:09', network: 'host' }, 'mac'],
  ['aliases with network none', { networkAliases: ['db'], network: 'none' }, 'networkAliases'],
  ['a NUL byte in an env value', { env: { A: 'x\0y' } }, 'env.A', /NUL/],
  ['a NUL byte in a label', { labels: { a: 'x\0y' } }, 'labels.a', /NUL/],
  ['a NUL byte in a label key', { labels: { 'a\0b': 'x' } }, 'labels', /NUL/],
  ['a NUL byte in the workdir', { workdir: '/srv\0x' }, 'workdir', /NUL/],
  ['a NUL byte in the user', { user: 'app\0' }, 'user', /NUL/],
  ['a NUL byte in a string command', { command: 'sh\0' }, 'command', /NUL/],
  ['a NUL byte in an entrypoint argument', { entrypoint: ['sh', '-c', 'a\0'] }, 'entrypoint.2', /NUL/],
  ['a NUL byte in a health check', { healthcheck: { test: ['CMD', 'true\0'] } }, 'healthcheck.test.1', /NUL/],
  ['a NUL byte in a volume', { volumes: ['data\0:/data'] }, 'volumes.0', /NUL/],
  ['a NUL byte in a mount target', { mounts: [{ type: 'tmpfs', target: '/t\0mp' }] }, 'mounts.0.target', /NUL/],
  ['a NUL byte in a sysctl value', { sysctls: { 'net.ipv4.ip_forward': '1\0' } }, 'sysctls.net.ipv4.ip_forward', /NUL/],
  ['a name server that is no address', { dns: ['1.2.3'] }, 'dns.0'],
  ['an extra host whose address is no address', { extraHosts: ['db:10.0.0'] }, 'extraHosts.0'],
  ['a volume target that is relative', { volumes: ['data:rel'] }, 'volumes.0.target'],
  ['a volume with an unknown option', { volumes: ['data:/data:bogus'] }, 'volumes.0'],
  ['two mounts on one target', { volumes: ['a:/data', 'b:/data'] }, 'volumes.1'],
];

describe('Container create refuses malformed options before any side effect', () => {
  for (const [what, opts, field, message] of REFUSED) {
    it(`refuses ${what} with INVALID_ARGUMENT naming ${field}, without an image lookup, record or directory`, async () => {
      const { svc, looked, entries } = setup();
      const err = await svc.create({ image: 'img', name: 'c', ...opts }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', field });
      if (message) expect((err as Error).message).toMatch(message);
      expect(looked).toEqual([]);
      expect(await svc.list({ all: true })).toEqual([]);
      expect(entries().filter((e) => e !== 'names')).toEqual([]);
      expect(await svc.get('c').catch((e: { code: string }) => e.code)).toBe('CONTAINER_NOT_FOUND');
    });
  }

  it('asks the network manager about a static address before any record (an address outside the subnet is refused)', async () => {
    const asked: unknown[] = [];
    const { svc, looked, entries } = setup({
      checkAttachment: async (o) => {
        asked.push(o);
        const { InvalidArgumentError } = await import('../../src/errors.js');
        throw new InvalidArgumentError('ip', `${o.ip} is not a host address of 10.89.7.0/24`);
      },
    });
    await expect(svc.create({ image: 'img', network: 'backend', ip: '10.0.0.5' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'ip',
    });
    expect(asked).toEqual([{ network: 'backend', ip: '10.0.0.5' }]);
    expect(looked).toEqual([]);
    expect(entries().filter((e) => e !== 'names')).toEqual([]);
  });

  it('records published ports parsed (typed bindings), not as the strings given', async () => {
    const { svc } = setup();
    const rec = await svc.create({ image: 'img', ports: ['127.0.0.1:8080:80', '53/udp', '9000-9001:90-91'] });
    expect(rec.config.net.ports).toEqual([
      { containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080 },
      { containerPort: 53, protocol: 'udp', hostIp: '', hostPort: 0 },
      { containerPort: 90, protocol: 'tcp', hostIp: '', hostPort: 9000 },
      { containerPort: 91, protocol: 'tcp', hostIp: '', hostPort: 9001 },
    ]);
    expect((await svc.get(rec.id)).config.net.ports).toEqual(rec.config.net.ports);
  });

  it('reads a record written before ports were stored parsed (strings) as typed bindings', async () => {
    const { svc, root } = setup();
    const rec = await svc.create({ image: 'img' });
    const old = {
      ...rec,
      config: { ...rec.config, net: { ...rec.config.net, ports: ['8080:80', '127.0.0.1::53/udp'] } },
    };
    expect(containerRecordSchema.parse(old).config.net.ports).toEqual([
      { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 8080 },
      { containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 0 },
    ]);
    mkdirSync(join(root, 'containers'), { recursive: true });
    writeFileSync(join(root, 'containers', `${rec.id}.json`), JSON.stringify(old));
    expect((await svc.get(rec.id)).config.net.ports).toEqual([
      { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 8080 },
      { containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 0 },
    ]);
  });
});

describe('a container record written before layers were stored as ids (layerDirs)', () => {
  /** `rec` as an older version wrote it: the layers' tree directories instead of their diffIDs. */
  function oldForm(rec: object, layerDirs: string[]): Record<string, unknown> {
    const { layers: _layers, ...rest } = rec as { layers: string[] };
    return { ...rest, layerDirs };
  }
  const OLD_DIRS = [
    `/var/lib/berth/layers/sha256/${'b'.repeat(64)}/fs`,
    `/var/lib/berth/layers/sha256/${'a'.repeat(64)}/fs`,
  ];

  it('is read with its layers as diffIDs in the same order, and saved in the new form at its next write', async () => {
    const { svc, root } = setup();
    const rec = await svc.create({ image: 'img', name: 'old' });
    const file = join(root, 'containers', `${rec.id}.json`);
    writeFileSync(file, JSON.stringify(oldForm(rec, OLD_DIRS)));
    expect((await svc.get(rec.id)).layers).toEqual([LAYER_B, LAYER_A]);
    await svc.rename(rec.id, 'renamed');
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(stored.layers).toEqual([LAYER_B, LAYER_A]);
    expect(stored).not.toHaveProperty('layerDirs');
  });

  it('is refused, naming layers.N, when a path names no stored layer', async () => {
    const { svc, root } = setup();
    const rec = await svc.create({ image: 'img' });
    writeFileSync(
      join(root, 'containers', `${rec.id}.json`),
      JSON.stringify(oldForm(rec, [OLD_DIRS[0]!, '/somewhere/else'])),
    );
    await expect(svc.get(rec.id)).rejects.toMatchObject({ code: 'INTERNAL', message: /layers\.1/ });
  });
});

describe('create from an already-resolved image (the image builder path)', () => {
  const resolved = { id: 'sha256:step', config: { cmd: ['sh'], env: ['B=2'] }, layers: [LAYER_B, LAYER_A] };

  it('records its layers and config without looking up or pulling the image', async () => {
    const { svc, looked } = setup();
    const rec = await svc.create({ image: 'build-step' }, resolved);
    expect(looked).toEqual([]);
    expect(rec).toMatchObject({ image: 'build-step', imageId: 'sha256:step', layers: [LAYER_B, LAYER_A] });
    expect(rec.config.env).toContain('B=2');
  });

  it('refuses a layer that is no diffID with INVALID_ARGUMENT naming layers.N, before any record', async () => {
    const { svc, entries } = setup();
    await expect(svc.create({ image: 'x' }, { ...resolved, layers: [LAYER_A, '../../etc'] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'layers.1',
    });
    expect(entries()).toEqual([]);
  });
});

describe('exec and spawn refuse a NUL byte before looking the container up', () => {
  it.each([
    [['sh', '-c', 'echo a\0b'], {}, 'command.2'],
    [['true'], { env: { A: 'x\0' } }, 'env.A'],
    [['true'], { workdir: '/tmp\0x' }, 'workdir'],
  ])('exec %j %j is INVALID_ARGUMENT naming %s', async (command, options, field) => {
    const root = tempDir('exec-nul');
    const engine = new Engine({ root: join(root, 'root'), runRoot: join(root, 'run') });
    try {
      await expect(new Container('nope', { engine }).exec(command, options)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field,
      });
      expect(() => new Container('nope', { engine }).spawn(command, options)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', field }),
      );
      expect(existsSync(join(root, 'root'))).toBe(false);
    } finally {
      engine.close();
    }
  });
});
