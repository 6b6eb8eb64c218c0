/**
 * Docker's per-container kernel limits: `ulimits` (resource limits), `sysctls` (namespaced kernel
 * parameters) and `oomScoreAdj`. Their schemas (every error names the field), and what a create
 * resolves them to: typed values, checked against what this engine's process can give.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { RLIMITS, RLIM_INFINITY, getrlimit } from '../runtime/host.js';
import { sysctlPath, type RuntimeRlimit } from '../runtime/plan.js';

/** A resource limit as Docker's API holds it (`--ulimit nofile=1024:2048`); -1 is unlimited. */
export interface Ulimit {
  /** Docker's name of the resource: `nofile`, `nproc`, `core`, `memlock`, `stack`… (`RLIMIT_NOFILE` …). */
  name: string;
  /** The limit the kernel enforces; -1: unlimited. */
  soft: number;
  /** The ceiling the process may raise `soft` to; -1: unlimited. Default: `soft`. */
  hard?: number;
}

/** Docker's names of the resource limits (go-units' `ulimitNameMapping`, and `as`). */
export const ULIMIT_NAMES: readonly string[] = Object.keys(RLIMITS);

const LIMIT_RE = /^(-1|\d{1,16})$/;

/**
 * Reads one `ulimits` entry: `{ name, soft, hard? }` or Docker's `name=soft[:hard]`. Returns
 * the limit, or why it is not one.
 */
export function parseUlimit(entry: Ulimit | string): Required<Ulimit> | string {
  let u: Ulimit;
  if (typeof entry === 'string') {
    const m = /^([a-z]+)=([^:]*)(?::(.*))?$/.exec(entry);
    if (!m || !LIMIT_RE.test(m[2]!) || (m[3] !== undefined && !LIMIT_RE.test(m[3])))
      return `expected name=soft[:hard] (numbers, or -1 for unlimited), got '${entry}'`;
    u = { name: m[1]!, soft: Number(m[2]), ...(m[3] !== undefined ? { hard: Number(m[3]) } : {}) };
  } else u = entry;
  if (!ULIMIT_NAMES.includes(u.name)) return `unknown ulimit '${u.name}' (expected one of ${ULIMIT_NAMES.join(', ')})`;
  const hard = u.hard ?? u.soft;
  if (![u.soft, hard].every((v) => Number.isSafeInteger(v) && v >= -1))
    return `${u.name}: limits are whole numbers, or -1 for unlimited`;
  if (limitValue(u.soft) > limitValue(hard))
    return `${u.name}: the soft limit ${u.soft} is above the hard limit ${hard}`;
  return { name: u.name, soft: u.soft, hard };
}

/** A limit as the kernel compares it: -1 is RLIM_INFINITY. */
function limitValue(v: number): bigint {
  return v < 0 ? RLIM_INFINITY : BigInt(v);
}

const limitNumber = z
  .number()
  .int()
  .min(-1, 'expected a number of at least 0, or -1 for unlimited')
  .max(Number.MAX_SAFE_INTEGER);
const ulimitObject = z.strictObject({ name: z.string(), soft: limitNumber, hard: limitNumber.optional() });

/**
 * Schema of `ulimits`: a list of {@link Ulimit} or `name=soft[:hard]` strings, each resource once,
 * none above this process's own hard limit (see {@link resolveUlimits}).
 */
export const ulimitsSchema = z
  .array(
    z
      .custom<Ulimit | string>(() => true)
      .superRefine((entry, ctx) => {
        if (typeof entry !== 'string') {
          // The object form, checked field by field (a union would only say "invalid input").
          const r = ulimitObject.safeParse(entry);
          for (const issue of r.error?.issues ?? []) {
            const message =
              issue.code === 'unrecognized_keys' ? `unknown or unsupported option '${issue.keys[0]}'` : issue.message;
            ctx.addIssue({ code: 'custom', path: issue.path, message });
          }
          if (!r.success) return;
        }
        const r = parseUlimit(entry);
        const why = typeof r === 'string' ? r : aboveOwnLimit(r);
        if (why) ctx.addIssue({ code: 'custom', message: why });
      }),
  )
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((entry, i) => {
      const r = parseUlimit(entry);
      if (typeof r === 'string') return;
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i], message: `${r.name} is given twice` });
      seen.add(r.name);
    });
  });

/**
 * The container's resource limits, typed (parsed once, at create). Refuses (`INVALID_ARGUMENT`,
 * naming `ulimits`) a limit above this process's own hard limit: raising a hard limit needs
 * CAP_SYS_RESOURCE, and the container's init inherits this process's limits.
 */
export function resolveUlimits(list: ReadonlyArray<Ulimit | string>): Array<Required<Ulimit>> {
  return list.map((entry, i) => {
    const u = parseUlimit(entry);
    const why = typeof u === 'string' ? u : aboveOwnLimit(u);
    if (why) throw new InvalidArgumentError(`ulimits.${i}`, why);
    return u as Required<Ulimit>;
  });
}

/** Why `u` cannot be given (a limit above this process's own hard limit), or undefined. */
function aboveOwnLimit(u: Required<Ulimit>): string | undefined {
  const ceiling = getrlimit(RLIMITS[u.name]!).hard;
  const over = (['soft', 'hard'] as const).find((which) => limitValue(u[which]) > ceiling);
  if (!over) return undefined;
  const show = (v: bigint) => (v === RLIM_INFINITY ? 'unlimited' : String(v));
  return (
    `${u.name}: the ${over} limit ${show(limitValue(u[over]))} is above this process's own hard limit (${show(ceiling)}); ` +
    'a container cannot be given more than the engine has (raising a hard limit needs CAP_SYS_RESOURCE)'
  );
}

/** The limits as the runtime sets them (`RLIMIT_*` numbers). */
export function runtimeRlimits(list: ReadonlyArray<Required<Ulimit>>): RuntimeRlimit[] {
  return list.map((u) => ({ resource: RLIMITS[u.name]!, soft: u.soft, hard: u.hard }));
}

/** The IPC namespace's sysctls Docker accepts by name (the `fs.mqueue.` ones by prefix). */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

/**
 * Why `key` may not be set in a container on `network`, or undefined when it may. As Docker:
 * only what the container's own namespaces hold — its IPC namespace (`kernel.msg*`, `kernel.sem`,
 * `kernel.shm*`, `fs.mqueue.*`, always its own) and its network namespace (`net.*`, unless it uses
 * the host's); `kernel.hostname` and `kernel.domainname` have options of their own.
 */
export function sysctlRefusal(key: string, network: string): string | undefined {
  if (!/^[A-Za-z0-9_./@:+-]+$/.test(key)) return `'${key}' is not a sysctl name`;
  try {
    sysctlPath(key);
  } catch {
    // sysctlPath's one refusal (an empty, `.` or `..` part): the reason given here instead.
    return `'${key}' is not a sysctl name`;
  }
  const name = key.includes('/') ? key.replaceAll('/', '.') : key;
  if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) return undefined;
  if (name.startsWith('net.')) {
    return network === 'host'
      ? `${key} is not allowed with network 'host': it would change the host's network namespace`
      : undefined;
  }
  if (name === 'kernel.hostname' || name === 'kernel.domainname')
    return `${key} is not allowed: use the ${name.slice(7)} option`;
  return `${key} is not allowed: it is not namespaced, so it would change the host (only net.*, kernel.msg*, kernel.sem, kernel.shm* and fs.mqueue.* are)`;
}

/**
 * Schema of `sysctls`: names to values (strings or numbers, no NUL byte). Which names are allowed
 * depends on the network: see {@link sysctlRefusal}, checked with the whole options.
 */
export const sysctlsSchema = z.record(
  z.string(),
  z.union([z.string().refine((v) => !v.includes('\0'), 'NUL byte in value'), z.number()]),
);

/** The container's sysctls, typed; refuses (`INVALID_ARGUMENT`, naming `sysctls.<key>`) what {@link sysctlRefusal} refuses. */
export function resolveSysctls(
  sysctls: Readonly<Record<string, string | number>>,
  network: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(sysctls)) {
    const why = sysctlRefusal(key, network);
    if (why) throw new InvalidArgumentError(`sysctls.${key}`, why);
    out[key] = String(value);
  }
  return out;
}

/** Docker's own sysctls for a network namespace of the container's own, where this kernel has them. */
let defaults: Record<string, string> | undefined;

/**
 * The sysctls Docker sets in a container with a network namespace of its own (not `host`, not
 * `container:<x>`), under the container's own: ICMP echo sockets for every group (ping without
 * CAP_NET_RAW) and every port bindable without CAP_NET_BIND_SERVICE. Both are the container's
 * network namespace's, not the host's. With a user namespace too: berth-init writes them from
 * the host's user namespace, where every group is mapped (Docker, writing from the container's,
 * leaves the group range out then).
 */
export function defaultSysctls(network: string): Record<string, string> {
  if (network === 'host' || network.startsWith('container:')) return {};
  defaults ??= Object.fromEntries(
    [
      ['net.ipv4.ping_group_range', '0 2147483647'],
      ['net.ipv4.ip_unprivileged_port_start', '0'],
    ].filter(([key]) => existsSync(sysctlPath(key!))),
  ) as Record<string, string>;
  return { ...defaults };
}

/** Schema of `oomScoreAdj`: -1000 (never killed for lack of memory) to 1000 (killed first). */
export const oomScoreAdjSchema = z.number().int().min(-1000).max(1000);
