/**
 * Resource options: Docker-style sizes, validation errors that name the field, resolution to
 * kernel units, the shares ↔ weight conversion, and cgroup layout detection from mountinfo.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  detectCgroups,
  parseResources,
  parseSize,
  sharesToWeight,
  weightToShares,
} from '../../src/runtime/cgroups/index.js';
import { InvalidArgumentError } from '../../src/errors.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('parseSize', () => {
  it.each([
    [4096, 4096],
    [0, 0],
    ['4096', 4096],
    ['512k', 512 * KiB],
    ['256m', 256 * MiB],
    ['256M', 256 * MiB],
    ['256mb', 256 * MiB],
    ['256MiB', 256 * MiB],
    ['1g', GiB],
    ['1.5g', 1.5 * GiB],
    ['2t', 2 * 1024 ** 4],
    ['1p', 1024 ** 5],
    ['10b', 10],
    ['64 m', 64 * MiB],
  ] as const)('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([-1, 1.5, NaN, '', 'm', '-5m', '5x', '1e9', '5 mm', '0x10'])('%j is not a size', (input) => {
    expect(parseSize(input)).toBeUndefined();
  });
});

describe('parseResources', () => {
  it('resolves to kernel units', () => {
    expect(
      parseResources({
        memory: '256m',
        memoryReservation: '128m',
        cpus: 1.5,
        cpuShares: 512,
        pids: 100,
        cpusetCpus: '0-1,3',
        cpusetMems: '0',
      }),
    ).toEqual({
      memory: 256 * MiB,
      memoryReservation: 128 * MiB,
      cpuPeriod: 100_000,
      cpuQuota: 150_000,
      cpuShares: 512,
      pids: 100,
      cpusetCpus: '0-1,3',
      cpusetMems: '0',
    });
  });

  it('honours explicit swap, period and quota', () => {
    expect(parseResources({ memory: 64 * MiB, memorySwap: -1 })).toEqual({ memory: 64 * MiB, memorySwap: -1 });
    expect(parseResources({ memory: '64m', memorySwap: '96m' })).toEqual({ memory: 64 * MiB, memorySwap: 96 * MiB });
    expect(parseResources({ cpus: 0.5, cpuPeriod: 50_000 })).toEqual({ cpuPeriod: 50_000, cpuQuota: 25_000 });
    expect(parseResources({ cpuQuota: 20_000, cpuPeriod: 10_000 })).toEqual({ cpuPeriod: 10_000, cpuQuota: 20_000 });
    expect(parseResources({ cpuQuota: -1 })).toEqual({ cpuQuota: -1 });
    expect(parseResources({ pids: 0 })).toEqual({ pids: -1 });
    expect(parseResources({ pids: -1 })).toEqual({ pids: -1 });
    expect(parseResources(undefined)).toEqual({});
    expect(parseResources({})).toEqual({});
  });

  it.each([
    [{ memory: '256x' }, 'resources.memory'],
    [{ memory: '1m' }, 'resources.memory'],
    [{ memory: -5 }, 'resources.memory'],
    [{ memoryReservation: 'lots' }, 'resources.memoryReservation'],
    [{ memory: '64m', memoryReservation: '128m' }, 'resources.memoryReservation'],
    [{ memorySwap: '1g' }, 'resources.memorySwap'],
    [{ memory: '64m', memorySwap: '32m' }, 'resources.memorySwap'],
    [{ cpus: 0 }, 'resources.cpus'],
    [{ cpus: -1 }, 'resources.cpus'],
    [{ cpus: 1, cpuQuota: 50_000 }, 'resources.cpus'],
    [{ cpuShares: 1 }, 'resources.cpuShares'],
    [{ cpuShares: 300_000 }, 'resources.cpuShares'],
    [{ cpuPeriod: 999 }, 'resources.cpuPeriod'],
    [{ cpuQuota: 10 }, 'resources.cpuQuota'],
    [{ cpusetCpus: '0-' }, 'resources.cpusetCpus'],
    [{ cpusetMems: 'a' }, 'resources.cpusetMems'],
    [{ pids: 1.5 }, 'resources.pids'],
    [{ blkioWeight: 10 }, 'resources.blkioWeight'],
  ])('rejects %j naming %s', (input, field) => {
    let error: unknown;
    try {
      parseResources(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', field });
    expect((error as Error).message).toContain(field);
  });

  it('uses the given prefix in field names', () => {
    expect(() => parseResources({ memory: 'x' }, 'update.resources')).toThrow(
      expect.objectContaining({ field: 'update.resources.memory' }),
    );
  });
});

describe('cpu shares ↔ weight', () => {
  it.each([
    [2, 1],
    [1024, 39],
    [512, 20],
    [2048, 79],
    [262_144, 10_000],
    [1, 1],
    [1_000_000, 10_000],
  ])('%d shares are weight %d', (shares, weight) => {
    expect(sharesToWeight(shares)).toBe(weight);
  });

  it('maps weight back to shares at the ends and monotonically between', () => {
    expect(weightToShares(1)).toBe(2);
    expect(weightToShares(10_000)).toBe(262_144);
    for (const s of [2, 100, 1024, 5000, 100_000, 262_144]) {
      expect(Math.abs(weightToShares(sharesToWeight(s)) - s)).toBeLessThanOrEqual(27);
    }
    let last = 0;
    for (let w = 1; w <= 10_000; w += 97) {
      expect(weightToShares(w)).toBeGreaterThan(last);
      last = weightToShares(w);
    }
  });
});

describe('detectCgroups', () => {
  const hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

  it('finds v1 controllers on a hybrid machine and ignores name=systemd', () => {
    const layout = detectCgroups(hybrid, () => '');
    expect(layout.mode).toBe('hybrid');
    expect(layout.v2Mount).toBe('/sys/fs/cgroup/unified');
    expect(layout.v1).toEqual({
      cpu: '/sys/fs/cgroup/cpu',
      cpuacct: '/sys/fs/cgroup/cpuacct',
      cpuset: '/sys/fs/cgroup/cpuset',
      memory: '/sys/fs/cgroup/memory',
      devices: '/sys/fs/cgroup/devices',
      freezer: '/sys/fs/cgroup/freezer',
      blkio: '/sys/fs/cgroup/blkio',
      pids: '/sys/fs/cgroup/pids',
    });
  });

  it('finds co-mounted v1 controllers on a v1-only machine', () => {
    const text = `25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
27 24 0:24 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
`;
    const layout = detectCgroups(text, () => '');
    expect(layout.mode).toBe('v1');
    expect(layout.v1).toEqual({
      cpu: '/sys/fs/cgroup/cpu,cpuacct',
      cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
      memory: '/sys/fs/cgroup/memory',
    });
    expect(layout.v2Mount).toBeUndefined();
  });

  it('picks v2 on a unified machine, reading its controllers', () => {
    const text =
      '35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
    const layout = detectCgroups(text, (m) =>
      m === '/sys/fs/cgroup' ? 'cpuset cpu io memory hugetlb pids rdma misc\n' : '',
    );
    expect(layout).toEqual({
      mode: 'v2',
      v1: {},
      v2Mount: '/sys/fs/cgroup',
      v2Controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
    });
  });

  it('unescapes mount points and reports none without hierarchies', () => {
    const text = '35 24 0:30 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n';
    expect(detectCgroups(text, () => 'memory').v2Mount).toBe('/mnt/my cgroup');
    expect(detectCgroups('22 1 8:1 / / rw - ext4 /dev/sda1 rw\n').mode).toBe('none');
    expect(detectCgroups(text, () => '').mode).toBe('none');
    expect(
      detectCgroups(text, () => {
        throw new Error('EACCES');
      }).mode,
    ).toBe('none');
  });

  it('reads this machine', () => {
    const layout = detectCgroups();
    expect(['v1', 'v2', 'hybrid', 'none']).toContain(layout.mode);
    expect(detectCgroups(readFileSync('/proc/self/mountinfo', 'utf8'))).toEqual(layout);
  });
});
