import { describe, expect, it } from 'vitest';
import {
  buildConfig,
  mergeEnv,
  resolveArgv,
  resolvConfFile,
  hostsFile,
  DEFAULT_PATH,
} from '../../src/container/spec.js';
import { createOptionsSchema, parseOptions, parseSignal } from '../../src/container/options.js';
import { InvalidArgumentError } from '../../src/errors.js';

describe('entrypoint and command (Docker semantics)', () => {
  const image = { entrypoint: ['/ep'], cmd: ['default'] };
  it.each([
    [{}, ['/ep', 'default']],
    [{ command: ['x', 'y'] }, ['/ep', 'x', 'y']],
    [{ entrypoint: ['/other'] }, ['/other']],
    [{ entrypoint: ['/other'], command: ['a'] }, ['/other', 'a']],
    [{ entrypoint: [], command: ['sh'] }, ['sh']],
    [{ command: 'single arg' }, ['/ep', 'single arg']],
  ])('%j → %j', (opts, argv) => {
    expect(resolveArgv(image, opts).argv).toEqual(argv);
  });
  it('refuses an empty command', () => {
    expect(() => resolveArgv({}, {})).toThrow(InvalidArgumentError);
    expect(() => resolveArgv({ entrypoint: ['/ep'] }, { entrypoint: [] })).toThrow(/no command specified/);
  });
});

describe('environment', () => {
  it('merges over the image, later wins, PATH defaulted', () => {
    expect(mergeEnv(['A=1', 'B=2'], { B: '3', C: 4 })).toEqual(['A=1', 'B=3', 'C=4', DEFAULT_PATH]);
    expect(mergeEnv(['PATH=/x'], ['A=1', 'A=2'])).toEqual(['PATH=/x', 'A=2']);
  });
});

describe('config', () => {
  const id = 'a'.repeat(64);
  it('defaults hostname to the short id and adds HOSTNAME', () => {
    const { config, path, args } = buildConfig(
      id,
      { cmd: ['sh'], workdir: '/w', user: 'app', stopSignal: 'SIGQUIT' },
      { image: 'x' },
    );
    expect(path).toBe('sh');
    expect(args).toEqual([]);
    expect(config).toMatchObject({
      hostname: 'aaaaaaaaaaaa',
      workdir: '/w',
      user: 'app',
      stopSignal: 3,
      stopTimeout: 10,
      network: 'bridge',
    });
    expect(config.env).toContain('HOSTNAME=aaaaaaaaaaaa');
  });
  it('computes capabilities from add and drop', () => {
    const { config } = buildConfig(
      id,
      { cmd: ['sh'] },
      { image: 'x', capDrop: ['ALL'], capAdd: ['net_admin', 'CAP_CHOWN'] },
    );
    expect(config.capabilities).toEqual(['CAP_CHOWN', 'CAP_NET_ADMIN']);
  });
});

describe('options', () => {
  it.each([
    [{ image: 'x', name: 'has space' }, 'name'],
    [{ image: 'x', workdir: 'rel' }, 'workdir'],
    [{ image: 'x', env: { 'A=B': 'c' } }, 'env'],
    [{ image: 'x', env: ['=x'] }, 'env.0'],
    [{ image: 'x', stopSignal: 'NOPE' }, 'stopSignal'],
    [{ image: 'x', capAdd: ['NOT_A_CAP'] }, 'capAdd.0'],
    [{ image: 'x', restartPolicy: 'always' }, 'restartPolicy'],
    [{ image: 'x', network: 'bad name!' }, 'network'],
    [{ image: '' }, 'image'],
    [{ image: 'x', user: 'a:b:c' }, 'user'],
  ])('rejects %j naming %s', (input, field) => {
    expect(() => parseOptions(createOptionsSchema, input)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field }),
    );
  });
  it('parses signals', () => {
    expect([
      parseSignal('SIGTERM'),
      parseSignal('kill'),
      parseSignal('9'),
      parseSignal(2),
      parseSignal('NOPE'),
    ]).toEqual([15, 9, 9, 2, undefined]);
  });
});

describe('etc files', () => {
  it('drops loopback nameservers for an own network namespace', () => {
    const host = 'nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example\n';
    expect(resolvConfFile(host, true)).toBe('nameserver 10.0.0.2\nsearch example\n');
    expect(resolvConfFile(host, false)).toBe(host);
  });
  it('names the host in /etc/hosts', () => {
    expect(hostsFile('box', 'example.org')).toContain('127.0.1.1\tbox.example.org box');
  });
});
