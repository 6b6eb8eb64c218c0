/**
 * Docker's defaults for a container, as policy of the container service: the capabilities it
 * keeps, the paths it masks or makes read-only, the device nodes of its `/dev`, the devices its
 * cgroup lets it use, and the swap a memory limit allows (its seccomp profile is in
 * `seccomp-profile.ts`). The runtime holds none of them: it carries out the plan it is given
 * (`buildPlan(spec, CONTAINER_PLAN_DEFAULTS)`), the limits and the device rules it is given.
 *
 * @module
 */
import { boundingSet, CAPABILITIES, normalizeCapability } from '../runtime/capabilities.js';
import type { PlanDefaults, PlanDevice } from '../runtime/plan.js';
import type { CgroupCreateOptions, CgroupLimits, DeviceRule } from '../runtime/cgroups/index.js';

/** The capabilities a Docker container keeps by default (moby's oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/**
 * The capability list a container gets: Docker's defaults (or all of them when privileged),
 * plus `add`, minus `drop`. `ALL` in either list means every capability. "All" is every one this
 * engine's process can give ({@link boundingSet}), as Podman does: asking for one it lacks by
 * name fails at start, but privileged still works where some were dropped.
 */
export function resolveCapabilities(add: readonly string[], drop: readonly string[], privileged: boolean): string[] {
  const held = boundingSet();
  const all = Object.keys(CAPABILITIES).filter((c) => (held >> BigInt(CAPABILITIES[c]!)) & 1n);
  const set = new Set(privileged ? all : DEFAULT_CAPABILITIES);
  const norm = (list: readonly string[]) =>
    list.map((c) => (c.toUpperCase() === 'ALL' ? 'ALL' : (normalizeCapability(c) ?? c)));
  const dropN = norm(drop);
  if (dropN.includes('ALL')) set.clear();
  else for (const c of dropN) set.delete(c);
  for (const c of norm(add)) {
    if (c === 'ALL') all.forEach((x) => set.add(x));
    else set.add(c);
  }
  return Object.keys(CAPABILITIES).filter((c) => set.has(c));
}

/** Paths Docker masks by default (moby's oci/defaults.go). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Paths Docker makes read-only by default. */
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/**
 * The standard device nodes. `/dev/console` is a null device unless the container has a
 * terminal: a real console node (5,1) would reach the host's console.
 */
export const DEFAULT_DEVICES: readonly PlanDevice[] = [
  { path: '/dev/null', major: 1, minor: 3, mode: 0o666 },
  { path: '/dev/zero', major: 1, minor: 5, mode: 0o666 },
  { path: '/dev/full', major: 1, minor: 7, mode: 0o666 },
  { path: '/dev/random', major: 1, minor: 8, mode: 0o666 },
  { path: '/dev/urandom', major: 1, minor: 9, mode: 0o666 },
  { path: '/dev/tty', major: 5, minor: 0, mode: 0o666 },
  { path: '/dev/console', major: 1, minor: 3, mode: 0o620 },
];

const allow = (type: 'c' | 'b', major: number | '*', minor: number | '*', access = 'rwm'): DeviceRule => ({
  type,
  major,
  minor,
  access,
  allow: true,
});

/**
 * Docker's default device allow-list, applied after denying every device: the character devices
 * every program expects (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`,
 * `/dev/tty`, `/dev/console`, `/dev/ptmx`, the pseudo-terminals, `/dev/net/tun`), plus `mknod` of
 * any device — which only creates a node: opening a host disk through it is still denied. So a
 * container with `CAP_MKNOD` cannot reach host devices.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = Object.freeze([
  allow('c', '*', '*', 'm'), // mknod of any character device
  allow('b', '*', '*', 'm'), // mknod of any block device
  allow('c', 1, 3), // /dev/null
  allow('c', 1, 5), // /dev/zero
  allow('c', 1, 7), // /dev/full
  allow('c', 1, 8), // /dev/random
  allow('c', 1, 9), // /dev/urandom
  allow('c', 5, 0), // /dev/tty
  allow('c', 5, 1), // /dev/console
  allow('c', 5, 2), // /dev/ptmx
  allow('c', 136, '*'), // /dev/pts/*
  allow('c', 10, 200), // /dev/net/tun
]);

/**
 * What a container's cgroup is made with: Docker's default device allow-list, or no device rule
 * for a privileged container.
 */
export function containerCgroupOptions(privileged: boolean): CgroupCreateOptions {
  return privileged ? { allowAllDevices: true } : { devices: DEFAULT_DEVICE_RULES };
}

/** What every container's plan is built with (see `buildPlan`). */
export const CONTAINER_PLAN_DEFAULTS: PlanDefaults = {
  maskedPaths: DEFAULT_MASKED_PATHS,
  readonlyPaths: DEFAULT_READONLY_PATHS,
  devices: DEFAULT_DEVICES,
};

/**
 * `limits` with Docker's default swap: a memory limit given without `memorySwap` allows as much
 * swap as memory (`memorySwap = 2 × memory`). Applied to the limits of a create and an update.
 */
export function withDefaultSwap(limits: CgroupLimits): CgroupLimits {
  if (limits.memory !== undefined && limits.memorySwap === undefined)
    limits.memorySwap = Math.min(Number.MAX_SAFE_INTEGER, limits.memory * 2);
  return limits;
}
