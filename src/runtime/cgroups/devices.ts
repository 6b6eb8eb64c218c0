/**
 * Device access rules, in the v1 `devices` controller's terms: the mechanism, not the choice.
 *
 * A cgroup starts from "deny everything" and is allowed what the rules it is given allow; which
 * devices those are is the caller's policy (the container service passes Docker's default
 * allow-list, `DEFAULT_DEVICE_RULES` in `src/container/defaults.ts`).
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
 * The device rules of a cgroup, in order: deny everything, then `rules` (validated first:
 * `InvalidArgumentError` names the bad field, e.g. `devices[0].access`). Both drivers apply
 * exactly this list.
 */
export function cgroupDeviceRules(rules: readonly DeviceRule[] = []): DeviceRule[] {
  rules.forEach((rule, i) => checkDeviceRule(rule, `devices[${i}]`));
  return [DENY_ALL_DEVICES, ...rules];
}

/** A rule as the kernel's `devices.allow`/`devices.deny` files take it: `c 1:3 rwm`. */
export function formatDeviceRule(rule: DeviceRule): string {
  if (rule.type === 'a') return 'a';
  return `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}
