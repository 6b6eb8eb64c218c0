/**
 * Device access rules for the v1 `devices` controller, and Docker's default allow-list.
 *
 * A container starts from "deny everything" and is allowed the character devices every program
 * expects (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`, `/dev/tty`,
 * `/dev/console`, `/dev/ptmx`, the pseudo-terminals, `/dev/net/tun`), plus `mknod` of any device —
 * which only creates a node: opening a host disk through it is still denied. So a container with
 * `CAP_MKNOD` cannot reach host devices.
 *
 * cgroup v2 has no devices files: device control there needs a `BPF_PROG_TYPE_CGROUP_DEVICE`
 * program, which berth does not load yet. On v2 the container's `/dev` (only the nodes berth
 * creates) is the boundary.
 *
 * @module
 */

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

/** A rule as the kernel's `devices.allow`/`devices.deny` files take it: `c 1:3 rwm`. */
export function formatDeviceRule(rule: DeviceRule): string {
  if (rule.type === 'a') return 'a';
  return `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}
