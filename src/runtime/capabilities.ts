/**
 * Linux capability names and numbers (<linux/capability.h>), this process's bounding set, and
 * what berth itself needs. Docker's default set is the container service's (`container/defaults.ts`).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { BerthError } from '../errors.js';
import { capget } from '../kernel/process.js';

/** Every capability the kernel defines, by name, with its number. */
export const CAPABILITIES: Readonly<Record<string, number>> = Object.freeze({
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
});

/** Normalises `chown`, `CHOWN` or `CAP_CHOWN` to `CAP_CHOWN`; undefined when unknown. */
export function normalizeCapability(name: string): string | undefined {
  const upper = name.toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  return full in CAPABILITIES ? full : undefined;
}

/** The bit mask of a list of capability names. */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const bit = CAPABILITIES[n];
    if (bit === undefined) throw new BerthError('INVALID_ARGUMENT', `unknown capability ${n}`);
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

let bounding: bigint | undefined;

/**
 * This process's capability bounding set (`CapBnd` in `/proc/self/status`): what a process it
 * starts can hold at most. Root's is usually every capability, but not always (a sandbox or a
 * VM may have dropped some). Read once.
 */
export function boundingSet(): bigint {
  if (bounding === undefined) {
    try {
      const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
      bounding = m ? BigInt(`0x${m[1]}`) : ~0n;
    } catch {
      // No /proc: the bounding set is unknown, so every capability counts as held (the kernel decides).
      bounding = ~0n;
    }
  }
  return bounding;
}

/**
 * The capabilities berth needs in its effective set (root has them all; so may a process given
 * them as ambient capabilities). Listed in the README's Requirements:
 *
 * - `CAP_SYS_ADMIN`: namespaces, mounts (overlayfs, binds, /proc), pivot_root, hostnames;
 * - `CAP_NET_ADMIN`: a container's loopback, bridges, veth pairs and nf_tables rules;
 * - `CAP_CHOWN`, `CAP_DAC_OVERRIDE`, `CAP_FOWNER`, `CAP_FSETID`, `CAP_MKNOD`, `CAP_SETFCAP`:
 *   unpacking layers (and copying files in and out) with their owners, modes, set-id bits, device
 *   nodes and file capabilities;
 * - `CAP_SETUID`, `CAP_SETGID`, `CAP_SETPCAP`: a container's user and capability sets;
 * - `CAP_KILL`, `CAP_SYS_PTRACE`: signalling and entering containers whose processes run as other
 *   users (their `/proc/<pid>/ns`, pidfd_getfd of their terminals).
 *
 * `CAP_SYS_RESOURCE` is not among them: only an `oomScoreAdj` below the engine's own needs it.
 */
export const ENGINE_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_SYS_ADMIN',
  'CAP_NET_ADMIN',
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_MKNOD',
  'CAP_SETFCAP',
  'CAP_SETUID',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_KILL',
  'CAP_SYS_PTRACE',
]);

/**
 * Checks that a process may run berth: every capability of {@link ENGINE_CAPABILITIES} in its
 * effective set. An engine calls it once, on first use, before it makes anything.
 *
 * @param current - The effective set and effective uid to check. Default: this process's
 * (`capget(2)` of the calling thread, `geteuid`).
 * @throws BerthError `PERMISSION_DENIED` saying what berth needs and what this process lacks.
 */
export function checkEnginePrivileges(current?: { effective: bigint; uid: number }): void {
  const { effective, uid } = current ?? { effective: capget().effective, uid: process.geteuid?.() ?? -1 };
  const missing = ENGINE_CAPABILITIES.filter((c) => ((effective >> BigInt(CAPABILITIES[c]!)) & 1n) === 0n);
  if (missing.length === 0) return;
  if (uid !== 0) {
    throw new BerthError(
      'PERMISSION_DENIED',
      `berth needs root: this process runs as uid ${uid} and lacks ${missing.join(', ')}. ` +
        'Run it as root (e.g. with sudo), or give it those capabilities (effective and ambient)',
    );
  }
  throw new BerthError(
    'PERMISSION_DENIED',
    `berth needs root with every capability it uses (see the README's Requirements): this process (uid 0) lacks ${missing.join(', ')}, ` +
      'as in a container or sandbox that dropped them. Run berth on the host, or in a privileged container',
  );
}
