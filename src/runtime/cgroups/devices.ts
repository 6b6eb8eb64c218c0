/**
 * Device access rules, in the v1 `devices` controller's terms, and Docker's default allow-list.
 *
 * A container starts from "deny everything" and is allowed the character devices every program
 * expects (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`, `/dev/tty`,
 * `/dev/console`, `/dev/ptmx`, the pseudo-terminals, `/dev/net/tun`), plus `mknod` of any device —
 * which only creates a node: opening a host disk through it is still denied. So a container with
 * `CAP_MKNOD` cannot reach host devices.
 *
 * The v1 driver writes the rules to `devices.deny`/`devices.allow`; the v2 driver, which has no
 * such files, compiles the same list into a `BPF_PROG_TYPE_CGROUP_DEVICE` program with the same
 * meaning (`device-filter.ts`).
 *
 * @module
 */
import { InvalidArgumentError } from '../../errors.js';

/** One line of `devices.allow` / `devices.deny`. */
export interface DeviceRule {
  /** `c` (character), `b` (block) or `a` (all). */
  type: 'c' | 'b' | 'a';
  /** Major number, or `*` for any. */
  major: number | '*';
  /** Minor number, or `*` for any. */
  minor: number | '*';
  /** Any of `r` (read), `w` (write), `m` (mknod). */
  access: string;
  /** Allow (`true`) or deny (`false`). */
  allow: boolean;
}

const allow = (type: 'c' | 'b', major: number | '*', minor: number | '*', access = 'rwm'): DeviceRule => ({
  type,
  major,
  minor,
  access,
  allow: true,
});

/** Docker's default device allow-list (applied after denying everything). */
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

/** The rule that denies every device and drops the rules before it (`devices.deny` ← `a`). */
export const DENY_ALL_DEVICES: DeviceRule = Object.freeze({
  type: 'a',
  major: '*',
  minor: '*',
  access: 'rwm',
  allow: false,
});

/** Largest device major number the kernel encodes (12 bits). */
export const MAX_DEVICE_MAJOR = 0xfff;
/** Largest device minor number the kernel encodes (20 bits). */
export const MAX_DEVICE_MINOR = 0xfffff;

/** Throws `InvalidArgumentError` naming `field` (`devices[2].major`) when `rule` is not a valid rule. */
export function checkDeviceRule(rule: DeviceRule, field: string): void {
  if (typeof rule !== 'object' || rule === null) throw new InvalidArgumentError(field, 'must be a device rule object');
  if (rule.type !== 'a' && rule.type !== 'b' && rule.type !== 'c')
    throw new InvalidArgumentError(`${field}.type`, `must be 'a', 'b' or 'c', not ${JSON.stringify(rule.type)}`);
  for (const [key, max] of [
    ['major', MAX_DEVICE_MAJOR],
    ['minor', MAX_DEVICE_MINOR],
  ] as const) {
    const v = rule[key];
    if (v !== '*' && !(Number.isInteger(v) && v >= 0 && v <= max)) {
      throw new InvalidArgumentError(
        `${field}.${key}`,
        `must be '*' or an integer from 0 to ${max}, not ${JSON.stringify(v)}`,
      );
    }
  }
  const access: unknown = rule.access;
  if (typeof access !== 'string' || !/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
    throw new InvalidArgumentError(
      `${field}.access`,
      `must be a non-empty subset of 'rwm', not ${JSON.stringify(rule.access)}`,
    );
  }
  if (typeof rule.allow !== 'boolean') throw new InvalidArgumentError(`${field}.allow`, 'must be true or false');
}

/**
 * The device rules of a container, in order: deny everything, Docker's default allow-list, then
 * `extra` (validated first: `InvalidArgumentError` names the bad field, e.g. `devices[0].access`).
 * Both drivers apply exactly this list.
 */
export function containerDeviceRules(extra: readonly DeviceRule[] = []): DeviceRule[] {
  extra.forEach((rule, i) => checkDeviceRule(rule, `devices[${i}]`));
  return [DENY_ALL_DEVICES, ...DEFAULT_DEVICE_RULES, ...extra];
}

/** A rule as the kernel's `devices.allow`/`devices.deny` files take it: `c 1:3 rwm`. */
export function formatDeviceRule(rule: DeviceRule): string {
  if (rule.type === 'a') return 'a';
  return `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}
