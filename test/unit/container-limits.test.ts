/**
 * The ulimits, sysctls and oomScoreAdj options (what a create accepts, refuses and stores), and
 * how the plan carries them and the container's cgroup view to the inits (JSON and native).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createOptionsSchema, parseOptions, type CheckedCreateOptions } from '../../src/container/options.js';
import {
  defaultSysctls,
  parseUlimit,
  resolveSysctls,
  resolveUlimits,
  runtimeRlimits,
  sysctlRefusal,
} from '../../src/container/limits.js';
import { buildConfig } from '../../src/container/spec.js';
import { buildPlan as buildPlanWith, sysctlPath, type RuntimeSpec } from '../../src/runtime/plan.js';
import { encodeInitPlan, NATIVE_PLAN_KEYS } from '../../src/runtime/native-init.js';
import { decodeNativePlan } from '../helpers/native-plan.js';
import { CONTAINER_PLAN_DEFAULTS } from '../../src/container/defaults.js';

/** A plan with the container service's defaults, as a container start builds it. */
const buildPlan = (spec: RuntimeSpec) => buildPlanWith(spec, CONTAINER_PLAN_DEFAULTS);
import { detectCgroups, V1Driver, V2Driver } from '../../src/runtime/cgroups/index.js';
import { getrlimit } from '../../src/kernel/process.js';
import {
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_REMOUNT,
  RLIMITS,
  RLIM_INFINITY,
} from '../../src/kernel/constants.js';
import { runtimeSpecFixture } from '../helpers/runtime-spec.js';

const parse = (over: Record<string, unknown>) =>
  parseOptions(createOptionsSchema, { image: 'x', ...over }) as CheckedCreateOptions;
const hardNofile = getrlimit(RLIMITS.nofile!).hard;

describe('ulimits', () => {
  it('reads the object and name=soft[:hard] forms; hard defaults to soft; -1 is unlimited', () => {
    expect(parseUlimit({ name: 'nofile', soft: 1024, hard: 2048 })).toEqual({ name: 'nofile', soft: 1024, hard: 2048 });
    expect(parseUlimit('nproc=100')).toEqual({ name: 'nproc', soft: 100, hard: 100 });
    expect(parseUlimit('memlock=-1:-1')).toEqual({ name: 'memlock', soft: -1, hard: -1 });
    expect(parseUlimit('core=0:-1')).toEqual({ name: 'core', soft: 0, hard: -1 });
    expect(
      runtimeRlimits([
        { name: 'nofile', soft: 1, hard: 2 },
        { name: 'as', soft: -1, hard: -1 },
      ]),
    ).toEqual([
      { resource: 7, soft: 1, hard: 2 },
      { resource: 9, soft: -1, hard: -1 },
    ]);
  });

  it.each([
    [[{ name: 'nofiles', soft: 1 }], 'ulimits.0', /unknown ulimit 'nofiles'/],
    [['nofile=2048:1024'], 'ulimits.0', /soft limit 2048 is above the hard limit 1024/],
    [['nofile=-1:1024'], 'ulimits.0', /soft limit -1 is above the hard limit 1024/],
    [['nofile'], 'ulimits.0', /expected name=soft\[:hard\]/],
    [['nofile=1k'], 'ulimits.0', /expected name=soft\[:hard\]/],
    [[{ name: 'nofile', soft: -2 }], 'ulimits.0.soft', /at least 0, or -1/],
    [[{ name: 'nofile', soft: 1.5 }], 'ulimits.0.soft', /./],
    [['nofile=10', { name: 'nofile', soft: 20 }], 'ulimits.1', /nofile is given twice/],
    [[{ name: 'nofile', soft: 1, extra: 1 }], 'ulimits.0', /unknown or unsupported option 'extra'/],
    [[{ soft: 1 }], 'ulimits.0.name', /./],
    [[7], 'ulimits.0', /expected object/],
  ])('refuses %j naming %s', (ulimits, field, message) => {
    expect(() => parse({ ulimits })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field, message: expect.stringMatching(message) }),
    );
  });

  it("refuses a limit above this process's own hard limit, at validation and when resolved", () => {
    expect(hardNofile).not.toBe(RLIM_INFINITY);
    const over = `nofile=${hardNofile}:${hardNofile + 1n}`;
    expect(() => parse({ ulimits: [over] })).toThrow(
      expect.objectContaining({
        field: 'ulimits.0',
        message: expect.stringContaining("above this process's own hard limit"),
      }),
    );
    expect(() => resolveUlimits([over])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'ulimits.0' }),
    );
    expect(resolveUlimits([`nofile=${hardNofile}`])).toEqual([
      { name: 'nofile', soft: Number(hardNofile), hard: Number(hardNofile) },
    ]);
  });

  it('is stored typed in the config (parsed once)', () => {
    const { config } = buildConfig(
      '0'.repeat(64),
      { cmd: ['sh'] },
      parse({
        ulimits: ['nofile=10:20', { name: 'core', soft: 0 }],
        oomScoreAdj: -5,
        sysctls: { 'net.core.somaxconn': 1024 },
      }),
    );
    expect(config.ulimits).toEqual([
      { name: 'nofile', soft: 10, hard: 20 },
      { name: 'core', soft: 0, hard: 0 },
    ]);
    expect(config.oomScoreAdj).toBe(-5);
    expect(config.sysctls).toEqual({ 'net.core.somaxconn': '1024' });
  });
});

describe('sysctls', () => {
  it('accepts the namespaced ones Docker accepts', () => {
    for (const key of [
      'kernel.msgmax',
      'kernel.msgmnb',
      'kernel.msgmni',
      'kernel.sem',
      'kernel.shmall',
      'kernel.shmmax',
      'kernel.shmmni',
      'kernel.shm_rmid_forced',
      'fs.mqueue.msg_max',
      'net.ipv4.ip_forward',
      'net/ipv4/conf/eth0.100/forwarding',
    ]) {
      expect(sysctlRefusal(key, 'bridge'), key).toBeUndefined();
    }
    expect(sysctlRefusal('net.ipv4.ip_forward', 'container:other')).toBeUndefined();
    expect(resolveSysctls({ 'kernel.sem': '250 32000 100 128', 'net.ipv4.ip_forward': 1 }, 'none')).toEqual({
      'kernel.sem': '250 32000 100 128',
      'net.ipv4.ip_forward': '1',
    });
  });

  it.each([
    [{ 'net.ipv4.ip_forward': '1' }, 'host', 'sysctls.net.ipv4.ip_forward', /network 'host'/],
    [{ 'kernel.hostname': 'x' }, 'bridge', 'sysctls.kernel.hostname', /use the hostname option/],
    [{ 'kernel.domainname': 'x' }, 'bridge', 'sysctls.kernel.domainname', /use the domainname option/],
    [{ 'kernel.randomize_va_space': '0' }, 'bridge', 'sysctls.kernel.randomize_va_space', /not namespaced/],
    [{ 'kernel.msgmax_x': '1' }, 'bridge', 'sysctls.kernel.msgmax_x', /not namespaced/],
    [{ 'vm.swappiness': '1' }, 'none', 'sysctls.vm.swappiness', /not namespaced/],
    [{ 'net..ipv4': '1' }, 'none', 'sysctls.net..ipv4', /not a sysctl name/],
    [{ 'net/../../etc': '1' }, 'none', 'sysctls.net/../../etc', /not a sysctl name/],
    [{ 'net.ipv4.x y': '1' }, 'none', 'sysctls.net.ipv4.x y', /not a sysctl name/],
    [{ 'net.ipv4.ip_forward': '1\0' }, 'none', 'sysctls.net.ipv4.ip_forward', /NUL/],
  ])('refuses %j on network %s naming %s', (sysctls, network, field, message) => {
    expect(() => parse({ sysctls, network })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field, message: expect.stringMatching(message) }),
    );
  });

  it("adds Docker's own in a network namespace of the container's own only", () => {
    const own = { 'net.ipv4.ping_group_range': '0 2147483647', 'net.ipv4.ip_unprivileged_port_start': '0' };
    expect(defaultSysctls('bridge')).toEqual(own);
    expect(defaultSysctls('none')).toEqual(own);
    expect(defaultSysctls('mynet')).toEqual(own);
    expect(defaultSysctls('host')).toEqual({});
    expect(defaultSysctls('container:other')).toEqual({});
  });

  it('maps names to /proc/sys paths, dotted or slashed', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv4/conf/eth0.100/forwarding')).toBe('/proc/sys/net/ipv4/conf/eth0.100/forwarding');
    expect(() => sysctlPath('net/./x')).toThrow();
  });
});

describe('oomScoreAdj', () => {
  it.each([[1001], [-1001], [1.5], ['5']])('refuses %j', (oomScoreAdj) => {
    expect(() => parse({ oomScoreAdj })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'oomScoreAdj' }),
    );
  });
  it('accepts -1000 to 1000', () => {
    expect(parse({ oomScoreAdj: -1000 }).oomScoreAdj).toBe(-1000);
    expect(parse({ oomScoreAdj: 1000 }).oomScoreAdj).toBe(1000);
  });
});

const spec = (over: Partial<RuntimeSpec> = {}): RuntimeSpec => runtimeSpecFixture({ lowerDirs: ['/l'], ...over });

/** The native plan's records of `keys`. */
function records(buf: Buffer, keys: string[]): string[][] {
  return decodeNativePlan(buf).filter(([k]) => keys.includes(k));
}

const RO = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;

describe('plan', () => {
  it('has the native records berth-init reads, with the same field counts (the KEYS table of monitor/plan.h)', () => {
    const source = readFileSync(new URL('../../src/runtime/monitor/plan.h', import.meta.url), 'utf8');
    const table = source.slice(source.indexOf('KEYS[] = {'), source.indexOf('};', source.indexOf('KEYS[] = {')));
    const keys = Object.fromEntries([...table.matchAll(/\{"(\w+)", (\d+)\}/g)].map((m) => [m[1], Number(m[2])]));
    expect(keys).toEqual(NATIVE_PLAN_KEYS);
  });

  it('carries sysctls as /proc/sys paths, and limits and oom_score_adj in the process', () => {
    const p = buildPlan(
      spec({
        sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '4096' },
        process: { ...spec().process, rlimits: [{ resource: 7, soft: 10, hard: -1 }], oomScoreAdj: -7 },
      }),
    );
    expect(p.sysctls).toEqual([
      { path: '/proc/sys/net/ipv4/ip_forward', value: '1' },
      { path: '/proc/sys/kernel/shmmax', value: '4096' },
    ]);
    expect(records(encodeInitPlan(p), ['rlimit', 'sysctl', 'oom'])).toEqual([
      ['rlimit', '7', '10', '-1'],
      ['sysctl', '/proc/sys/net/ipv4/ip_forward', '1'],
      ['sysctl', '/proc/sys/kernel/shmmax', '4096'],
      ['oom', '-7'],
    ]);
    const none = buildPlan(spec());
    expect([none.sysctls, none.cgroupMounts]).toEqual([[], []]);
    expect(records(encodeInitPlan(none), ['rlimit', 'sysctl', 'oom', 'cgmount'])).toEqual([]);
  });

  it('mounts a cgroup v2 view as one read-only cgroup2 mount, made in the cgroup namespace', () => {
    const p = buildPlan(spec({ cgroupView: { version: 2 } }));
    expect(p.cgroupMounts).toEqual([
      { source: 'cgroup', target: '/sys/fs/cgroup', fstype: 'cgroup2', flags: RO, data: null },
    ]);
    expect(p.mounts.map((m) => m.target)).not.toContain('/sys/fs/cgroup');
    expect(records(encodeInitPlan(p), ['cgmount'])).toEqual([
      ['cgmount', 'cgroup', '/sys/fs/cgroup', 'cgroup2', String(RO), ''],
    ]);
  });

  it('mounts a cgroup v1 view on a tmpfs: each hierarchy read-only, aliases as symlinks, then the tmpfs read-only', () => {
    const p = buildPlan(
      spec({
        cgroupView: {
          version: 1,
          hierarchies: [
            { dir: 'cpu,cpuacct', options: 'cpu,cpuacct', aliases: ['cpu', 'cpuacct'] },
            { dir: 'memory', options: 'memory', aliases: [] },
          ],
        },
      }),
    );
    expect(p.mounts.map((m) => m.target).slice(0, 3)).toEqual(['/proc', '/sys', '/sys/fs/cgroup']);
    expect(p.mounts[2]).toMatchObject({ fstype: 'tmpfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC });
    expect(p.symlinks).toContainEqual(['cpu,cpuacct', '/sys/fs/cgroup/cpu']);
    expect(p.symlinks).toContainEqual(['cpu,cpuacct', '/sys/fs/cgroup/cpuacct']);
    expect(p.cgroupMounts).toEqual([
      { source: 'cgroup', target: '/sys/fs/cgroup/cpu,cpuacct', fstype: 'cgroup', flags: RO, data: 'cpu,cpuacct' },
      { source: 'cgroup', target: '/sys/fs/cgroup/memory', fstype: 'cgroup', flags: RO, data: 'memory' },
      { source: null, target: '/sys/fs/cgroup', fstype: 'tmpfs', flags: MS_BIND | MS_REMOUNT | RO, data: null },
    ]);
    expect(() =>
      buildPlan(spec({ cgroupView: { version: 1, hierarchies: [{ dir: '..', options: 'x', aliases: [] }] } })),
    ).toThrow();
  });
});

describe('cgroup view', () => {
  it("repeats each v1 hierarchy's options and names its co-mounted controllers as aliases", () => {
    const layout = detectCgroups(
      `25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory,release_agent=/x
27 24 0:24 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,clone_children
28 24 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
`,
      () => '',
    );
    expect(layout.v1MountOptions).toEqual({
      '/sys/fs/cgroup/cpu,cpuacct': 'cpu,cpuacct',
      '/sys/fs/cgroup/memory': 'memory',
      '/sys/fs/cgroup/cpuset': 'cpuset,clone_children',
    });
    expect(new V1Driver({ layout }).view()).toEqual({
      version: 1,
      hierarchies: [
        { dir: 'cpu,cpuacct', options: 'cpu,cpuacct', aliases: ['cpu', 'cpuacct'] },
        { dir: 'memory', options: 'memory', aliases: [] },
        { dir: 'cpuset', options: 'cpuset,clone_children', aliases: [] },
      ],
    });
    expect(
      new V2Driver({ layout: { mode: 'v2', v1: {}, v2Mount: '/sys/fs/cgroup', v2Controllers: ['memory'] } }).view(),
    ).toEqual({ version: 2 });
  });
});
