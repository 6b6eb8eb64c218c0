/**
 * Resource limits: the public {@link ResourceOptions} (Docker's words and units), their zod
 * schema, and {@link parseResources}, which validates them and resolves them to
 * {@link CgroupLimits} — plain numbers in the kernel's units, the shape both cgroup drivers take.
 *
 * @module
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';

/**
 * Resource limits of a container, as Docker's `docker run` / `docker update` flags name them.
 * Every field is optional; an absent field leaves that resource unlimited (on create) or
 * unchanged (on update).
 *
 * @example
 * ```ts
 * import type { ResourceOptions } from 'berth';
 * const limits: ResourceOptions = { memory: '256m', cpus: 1.5, pids: 100 };
 * ```
 */
export interface ResourceOptions {
  /**
   * Memory limit (`--memory`): bytes as a number, or a size string such as `'256m'`, `'1g'`,
   * `'512k'`, `'1.5g'` (binary units; a trailing `b` or `ib` is accepted). At least 6 MiB.
   */
  memory?: number | string;
  /**
   * Soft limit (`--memory-reservation`): memory the container is pushed back to under pressure.
   * Same units as {@link ResourceOptions.memory}; not above it.
   */
  memoryReservation?: number | string;
  /**
   * Memory plus swap (`--memory-swap`), same units, or `-1` for unlimited swap. Needs
   * {@link ResourceOptions.memory}, and is at least as large. Absent while `memory` is set: the
   * container may use as much swap as memory (Docker's default, twice `memory` in total).
   */
  memorySwap?: number | string;
  /** CPUs (`--cpus`), fractional: `1.5` is a quota of 150 ms per 100 ms period. Not with `cpuQuota`. */
  cpus?: number;
  /** Relative CPU weight (`--cpu-shares`), 2 to 262144; the default is 1024 (weight 100 on cgroup v2). */
  cpuShares?: number;
  /** CFS period in microseconds (`--cpu-period`), 1000 to 1000000. Default 100000. */
  cpuPeriod?: number;
  /** CFS quota in microseconds per period (`--cpu-quota`), at least 1000, or `-1` for none. */
  cpuQuota?: number;
  /** CPUs the container may run on (`--cpuset-cpus`), e.g. `'0-2,4'`. */
  cpusetCpus?: string;
  /** Memory nodes the container may use (`--cpuset-mems`), e.g. `'0'`. */
  cpusetMems?: string;
  /** Maximum number of processes and threads (`--pids-limit`); `0` or `-1` is unlimited. */
  pids?: number;
}

/**
 * Resolved limits in kernel units, ready for a cgroup driver. A field that is absent is not
 * written; `-1` means "unlimited" where noted.
 */
export interface CgroupLimits {
  /** Memory limit in bytes; `-1` for unlimited. */
  memory?: number;
  /** Soft limit in bytes (`memory.soft_limit_in_bytes` on v1, `memory.low` on v2); `-1` for none. */
  memoryReservation?: number;
  /** Memory plus swap in bytes; `-1` for unlimited swap. */
  memorySwap?: number;
  /** CFS quota in microseconds per period; `-1` for none. */
  cpuQuota?: number;
  /** CFS period in microseconds. */
  cpuPeriod?: number;
  /** CPU shares (v1 units, 2 to 262144); converted with {@link sharesToWeight} on v2. */
  cpuShares?: number;
  /** `cpuset.cpus`. */
  cpusetCpus?: string;
  /** `cpuset.mems`. */
  cpusetMems?: string;
  /** Maximum number of tasks; `-1` for unlimited. */
  pids?: number;
}

/** The smallest memory limit accepted, as Docker's: 6 MiB. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** The CFS period used when only `cpus` is given, in microseconds. */
export const DEFAULT_CPU_PERIOD = 100_000;

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const SIZE_RE = /^(\d+(?:\.\d+)?)\s?([kmgtp])?(?:i?b)?$/i;
const CPU_LIST_RE = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/**
 * Parses a size the way Docker's `RAMInBytes` does: a number is bytes; a string is a decimal
 * number with an optional binary unit (`b`, `k`, `m`, `g`, `t`, `p`, case-insensitive, optionally
 * followed by `b` or `ib`). Returns `undefined` for anything else. Fractions of a byte are dropped.
 *
 * @example
 * ```ts
 * parseSize('256m'); // 268435456
 * parseSize('1.5g'); // 1610612736
 * parseSize(4096);   // 4096
 * ```
 */
export function parseSize(input: number | string): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  const m = SIZE_RE.exec(input.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Converts v1 CPU shares (2 to 262144) to a cgroup v2 `cpu.weight` (1 to 10000) with the linear
 * mapping the OCI runtimes use (`1 + ((shares - 2) * 9999) / 262142`, integer division), so the
 * default 1024 shares become weight 39 and the extremes map onto the extremes.
 */
export function sharesToWeight(shares: number): number {
  const s = Math.min(262_144, Math.max(2, Math.trunc(shares)));
  return 1 + Math.floor(((s - 2) * 9999) / 262_142);
}

/** The inverse of {@link sharesToWeight}: a v2 `cpu.weight` (1 to 10000) as v1 shares (2 to 262144). */
export function weightToShares(weight: number): number {
  const w = Math.min(10_000, Math.max(1, Math.trunc(weight)));
  return 2 + Math.floor(((w - 1) * 262_142) / 9999);
}

const size = (allowUnlimited: boolean) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    if (allowUnlimited && (v === -1 || v === '-1')) return -1;
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `'${v}' is not a size (use bytes or a unit: '256m', '1g')` });
      return z.NEVER;
    }
    return n;
  });

/** Schema of {@link ResourceOptions}; its output is not yet resolved (see {@link parseResources}). */
export const resourceOptionsSchema = z.strictObject({
  memory: size(false)
    .refine((n) => n >= MIN_MEMORY, 'must be at least 6 MiB (6m)')
    .optional(),
  memoryReservation: size(false).optional(),
  memorySwap: size(true).optional(),
  cpus: z.number().positive().max(1024).finite().optional(),
  cpuShares: z.number().int().min(2).max(262_144).optional(),
  cpuPeriod: z.number().int().min(1000).max(1_000_000).optional(),
  cpuQuota: z.union([z.literal(-1), z.number().int().min(1000)]).optional(),
  cpusetCpus: z.string().regex(CPU_LIST_RE, "expected a list such as '0-2,4'").optional(),
  cpusetMems: z.string().regex(CPU_LIST_RE, "expected a list such as '0' or '0-1'").optional(),
  pids: z.number().int().min(-1).optional(),
});

/**
 * Validates resource options and resolves them to {@link CgroupLimits}. Throws
 * `InvalidArgumentError` (`INVALID_ARGUMENT`) naming the field, e.g. `resources.memory`.
 *
 * Docker's rules apply: `memorySwap` needs `memory` and is not below it; `memoryReservation` is not
 * above `memory`; `cpus` and `cpuQuota` exclude each other. A `memorySwap` not given stays
 * absent: the container service applies Docker's default (`withDefaultSwap` in
 * `container/defaults.ts`).
 *
 * @param input - The options, typically `options.resources` as the user passed them.
 * @param field - The prefix for field names in errors. Default `resources`.
 */
export function parseResources(input: unknown, field = 'resources'): CgroupLimits {
  const r = resourceOptionsSchema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
    const message = issue.code === 'unrecognized_keys' ? `unknown option '${issue.keys[0]}'` : issue.message;
    throw new InvalidArgumentError([field, ...path.map(String)].filter(Boolean).join('.'), message, { cause: r.error });
  }
  const o = r.data;
  const f = (name: string): string => (field ? `${field}.${name}` : name);
  const out: CgroupLimits = {};
  if (o.memory !== undefined) out.memory = o.memory;
  if (o.memoryReservation !== undefined) {
    if (o.memory !== undefined && o.memoryReservation > o.memory) {
      throw new InvalidArgumentError(f('memoryReservation'), 'must not be above the memory limit');
    }
    out.memoryReservation = o.memoryReservation;
  }
  if (o.memorySwap !== undefined) {
    if (o.memory === undefined)
      throw new InvalidArgumentError(f('memorySwap'), 'needs a memory limit (resources.memory) as well');
    if (o.memorySwap !== -1 && o.memorySwap < o.memory) {
      throw new InvalidArgumentError(
        f('memorySwap'),
        'must be at least the memory limit (it counts memory plus swap), or -1',
      );
    }
    out.memorySwap = o.memorySwap;
  }
  if (o.cpus !== undefined && o.cpuQuota !== undefined) {
    throw new InvalidArgumentError(f('cpus'), 'cannot be combined with cpuQuota; give one of them');
  }
  if (o.cpuPeriod !== undefined) out.cpuPeriod = o.cpuPeriod;
  if (o.cpus !== undefined) {
    const period = o.cpuPeriod ?? DEFAULT_CPU_PERIOD;
    out.cpuPeriod = period;
    out.cpuQuota = Math.max(1000, Math.round(o.cpus * period));
  }
  if (o.cpuQuota !== undefined) out.cpuQuota = o.cpuQuota;
  if (o.cpuShares !== undefined) out.cpuShares = o.cpuShares;
  if (o.cpusetCpus !== undefined) out.cpusetCpus = o.cpusetCpus;
  if (o.cpusetMems !== undefined) out.cpusetMems = o.cpusetMems;
  if (o.pids !== undefined) out.pids = o.pids <= 0 ? -1 : o.pids;
  return out;
}
