import { describe, expect, it } from 'vitest';
import { buildPlan as buildPlanWith, overlayData, type RuntimeSpec } from '../../src/runtime/plan.js';
import { boundingSet, CAPABILITIES, capabilityMask } from '../../src/runtime/capabilities.js';
import { CONTAINER_PLAN_DEFAULTS, resolveCapabilities } from '../../src/container/defaults.js';
import { resolveUserFrom, parsePasswd, parseGroup } from '../../src/runtime/user.js';
import { CLONE_NEWNET, CLONE_NEWNS } from '../../src/kernel/constants.js';
import { runtimeSpecFixture } from '../helpers/runtime-spec.js';

/** A plan with the container service's defaults, as a container start builds it. */
const buildPlan = (spec: RuntimeSpec) => buildPlanWith(spec, CONTAINER_PLAN_DEFAULTS);

const spec = runtimeSpecFixture;

describe('plan', () => {
  it('is pure and serializable', () => {
    const p = buildPlan(spec());
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
    expect(buildPlan(spec())).toEqual(p);
  });
  it('unshares the network only when asked', () => {
    expect(buildPlan(spec()).unshareFlags & CLONE_NEWNET).toBe(CLONE_NEWNET);
    expect(buildPlan(spec({ network: 'host' })).unshareFlags & CLONE_NEWNET).toBe(0);
    expect(buildPlan(spec()).unshareFlags & CLONE_NEWNS).toBe(CLONE_NEWNS);
  });
  it('builds overlay data topmost first and refuses separators in paths', () => {
    expect(overlayData(spec().rootfs)).toBe('lowerdir=/l2:/l1,upperdir=/u,workdir=/w');
    expect(() => overlayData({ ...spec().rootfs, upperDir: '/a,b' })).toThrow();
  });
  it('masks Docker’s paths and keeps Docker’s capability mask', () => {
    const p = buildPlan(spec());
    expect(p.maskedPaths).toContain('/proc/kcore');
    expect(p.readonlyPaths).toContain('/proc/sys');
    expect(BigInt(p.capabilityMask)).toBe(0xa80425fbn);
    expect(p.mounts.map((m) => m.target)).toEqual(['/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue']);
  });
});

describe('capabilities', () => {
  it('resolves add/drop/ALL/privileged', () => {
    expect(resolveCapabilities([], ['ALL'], false)).toEqual([]);
    // "All" is every capability this process can give: its bounding set.
    const held = Object.entries(CAPABILITIES)
      .filter(([, bit]) => (boundingSet() >> BigInt(bit)) & 1n)
      .map(([name]) => name);
    expect(held.length).toBeGreaterThan(30);
    expect(resolveCapabilities(['ALL'], [], false)).toEqual(held);
    expect(resolveCapabilities([], [], true)).toEqual(held);
    expect(resolveCapabilities([], ['chown'], true)).not.toContain('CAP_CHOWN');
    expect(capabilityMask(['CAP_CHOWN', 'CAP_KILL'])).toBe(0b100001n);
  });
});

describe('user resolution', () => {
  const passwd = parsePasswd([
    ['root', 'x', '0', '0', 'root', '/root', '/bin/sh'],
    ['app', 'x', '1000', '1000', '', '/home/app', '/bin/sh'],
  ]);
  const groups = parseGroup([
    ['root', 'x', '0', ''],
    ['app', 'x', '1000', ''],
    ['extra', 'x', '2000', 'app,other'],
    ['more', 'x', '3000', 'app'],
  ]);
  it.each([
    ['', { uid: 0, gid: 0, additionalGids: [0], home: '/root' }],
    ['app', { uid: 1000, gid: 1000, additionalGids: [1000, 2000, 3000], home: '/home/app' }],
    ['1000', { uid: 1000, gid: 1000, additionalGids: [1000, 2000, 3000], home: '/home/app' }],
    ['app:extra', { uid: 1000, gid: 2000, additionalGids: [], home: '/home/app' }],
    ['42:43', { uid: 42, gid: 43, additionalGids: [], home: '/' }],
  ])('%s', (s, expected) => {
    expect(resolveUserFrom(s, passwd, groups)).toEqual(expected);
  });
  it('names a missing user or group as Docker does', () => {
    expect(() => resolveUserFrom('ghost', passwd, groups)).toThrow(
      'unable to find user ghost: no matching entries in passwd file',
    );
    expect(() => resolveUserFrom('app:ghost', passwd, groups)).toThrow('unable to find group ghost');
  });
});
