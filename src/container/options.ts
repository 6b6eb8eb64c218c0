/**
 * Options of `Container.create` and friends, validated with zod before any side effect.
 * Every error names the offending field.
 *
 * @module
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { parseIp } from '../network/ipam.js';
import { parsePortSpec, type PortBinding } from '../network/ports.js';
import { SIGNALS } from '../runtime/host.js';
import { normalizeCapability } from '../runtime/capabilities.js';
import { mountOptionsSchema, type MountOptions } from './mounts.js';
import { parseResources, type CgroupLimits, type ResourceOptions } from '../runtime/cgroups/index.js';
import { withDefaultSwap } from './defaults.js';
import { oomScoreAdjSchema, sysctlRefusal, sysctlsSchema, ulimitsSchema, type Ulimit } from './limits.js';
import { SECCOMP_OPTION_RE } from './seccomp.js';
import { usernsOptionSchema, type UsernsOption } from './userns.js';
import { logOptionsSchema, type LogOptions } from './log-options.js';
import { outputCapShape, type OutputCapOptions } from './output-options.js';

const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const ENV_KEY_RE = /^[^=\0]+$/;

const command = z.union([
  z.string().min(1),
  z.array(z.string().refine((s) => !s.includes('\0'), 'NUL byte in argument')),
]);
const signal = z
  .union([z.string(), z.number().int().positive()])
  .refine((s) => parseSignal(s) !== undefined, 'unknown signal');
const capability = z
  .string()
  .refine((c) => c.toUpperCase() === 'ALL' || normalizeCapability(c) !== undefined, 'unknown capability');

/** One Docker port string, parsed once (at create) into its bindings; its errors name the entry. */
const portSpec = z.string().transform((spec, ctx): PortBinding[] => {
  try {
    return parsePortSpec(spec, '');
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/**
 * `resources` as given (Docker's flags, sizes such as `'256m'`), validated and resolved once to the
 * limits a cgroup driver takes ({@link CgroupLimits}, stored so in the record). A refusal names the
 * field, e.g. `resources.memory`.
 */
export const resourcesSchema: z.ZodType<CgroupLimits, unknown> = z
  .record(z.string(), z.unknown())
  .transform((v, ctx) => {
    try {
      return withDefaultSwap(parseResources(v, ''));
    } catch (e) {
      if (!(e instanceof InvalidArgumentError)) throw e;
      const field = e.field.split('.');
      ctx.addIssue({ code: 'custom', path: field, message: e.message.slice(`invalid ${e.field}: `.length) });
      return z.NEVER;
    }
  });

/** Schema of {@link ContainerCreateOptions}. */
export const createOptionsSchema = z
  .strictObject({
    image: z.string().min(1),
    command: command.optional(),
    entrypoint: z.union([command, z.array(z.string()).length(0)]).optional(),
    env: z
      .union([
        z.record(z.string().regex(ENV_KEY_RE, 'invalid variable name'), z.union([z.string(), z.number(), z.boolean()])),
        z.array(z.string().regex(/^[^=\0][^\0]*$/, 'expected KEY=value')),
      ])
      .optional(),
    workdir: z
      .string()
      .refine((w) => w.startsWith('/'), 'must be an absolute path')
      .optional(),
    user: z
      .string()
      .regex(/^[^:\s]*(:[^:\s]+)?$/, 'expected user[:group]')
      .optional(),
    name: z.string().regex(NAME_RE, 'only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed').max(253).optional(),
    hostname: z.string().regex(HOSTNAME_RE, 'not a valid hostname').max(253).optional(),
    domainname: z.string().regex(HOSTNAME_RE, 'not a valid domain name').max(253).optional(),
    labels: z.record(z.string().min(1), z.string()).optional(),
    tty: z.boolean().optional(),
    stdin: z.boolean().optional(),
    consoleSize: z
      .strictObject({ cols: z.number().int().min(1).max(65535), rows: z.number().int().min(1).max(65535) })
      .optional(),
    network: z
      .string()
      .regex(
        /^(none|host|bridge|container:[^\s]+|[a-zA-Z0-9][a-zA-Z0-9_.-]*)$/,
        'expected none, host, bridge, container:<id|name> or a network name',
      )
      .optional(),
    networkAliases: z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)).optional(),
    ip: z
      .string()
      .refine((s) => parseIp(s) !== undefined, 'expected an IPv4 address (four numbers 0-255)')
      .optional(),
    mac: z
      .string()
      .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'expected aa:bb:cc:dd:ee:ff')
      .optional(),
    ports: z
      .array(portSpec)
      .transform((lists) => lists.flat())
      .optional(),
    publishAll: z.boolean().optional(),
    dns: z.array(z.string().refine((s) => isIP(s) !== 0, 'expected an IP address')).optional(),
    dnsSearch: z.array(z.string().regex(/^[a-zA-Z0-9.-]+$/)).optional(),
    dnsOptions: z.array(z.string().regex(/^[a-zA-Z0-9_:.-]+$/)).optional(),
    extraHosts: z
      .array(
        z.string().refine((s) => /^[^:\s]+:/.test(s) && isIP(s.slice(s.indexOf(':') + 1)) !== 0, 'expected host:ip'),
      )
      .optional(),
    capAdd: z.array(capability).optional(),
    capDrop: z.array(capability).optional(),
    privileged: z.boolean().optional(),
    readOnlyRootfs: z.boolean().optional(),
    securityOpt: z
      .array(
        z
          .string()
          .refine(
            (o) =>
              ['no-new-privileges', 'no-new-privileges:true', 'no-new-privileges:false'].includes(o) ||
              SECCOMP_OPTION_RE.test(o),
            'expected no-new-privileges[:true|false], seccomp=unconfined, seccomp=<profile file> or seccomp=<profile JSON>',
          ),
      )
      .optional(),
    autoRemove: z.boolean().optional(),
    detach: z.boolean().optional(),
    stopSignal: signal.optional(),
    stopTimeout: z.number().int().min(-1).optional(),
    mounts: z.array(mountOptionsSchema).optional(),
    volumes: z.array(z.string()).optional(),
    volumesFrom: z.array(z.string().regex(/^[^:]+(:(ro|rw))?$/, 'expected container[:ro|rw]')).optional(),
    resources: resourcesSchema.optional(),
    ulimits: ulimitsSchema.optional(),
    sysctls: sysctlsSchema.optional(),
    oomScoreAdj: oomScoreAdjSchema.optional(),
    userns: usernsOptionSchema.optional(),
    init: z.boolean().optional(),
    log: logOptionsSchema.optional(),
    healthcheck: z
      .strictObject({
        test: z.union([z.string().min(1), z.array(z.string()).min(1)]),
        interval: z.number().int().positive().optional(),
        timeout: z.number().int().positive().optional(),
        retries: z.number().int().positive().optional(),
        startPeriod: z.number().int().min(0).optional(),
      })
      .optional(),
    restart: z
      .string()
      .regex(/^(no|always|unless-stopped|on-failure(:\d+)?)$/, 'expected no, on-failure[:N], always or unless-stopped')
      .optional(),
    timeout: z.number().int().positive().optional(),
    ...outputCapShape,
  })
  .superRefine((o, ctx) => {
    for (const key of Object.keys(o.sysctls ?? {})) {
      const why = sysctlRefusal(key, o.network ?? 'bridge');
      if (why) ctx.addIssue({ code: 'custom', path: ['sysctls', key], message: why });
    }
    for (const [field, why] of networkConflicts(o)) ctx.addIssue({ code: 'custom', path: [field], message: why });
  });

/**
 * Options that need an interface of the container's own on a bridge, refused with a network that
 * gives it none: `none` (loopback only), `host` (the host's interfaces and ports as they are) and
 * `container:<x>` (that container's interfaces). Docker refuses the same with `container:`; with
 * `host` it drops published ports with a warning, which a library cannot show, so they are refused
 * here too. A fixed address also needs a user-defined network, as with Docker.
 */
function networkConflicts(o: {
  network?: string | undefined;
  ports?: unknown[] | undefined;
  publishAll?: boolean | undefined;
  ip?: string | undefined;
  mac?: string | undefined;
  networkAliases?: string[] | undefined;
}): Array<[string, string]> {
  const mode = o.network ?? 'bridge';
  const out: Array<[string, string]> = [];
  const shared = mode.startsWith('container:');
  if (mode === 'none' || mode === 'host' || shared) {
    const why =
      mode === 'none'
        ? "network 'none' gives the container only a loopback interface"
        : mode === 'host'
          ? "with network 'host' the container uses the host's interfaces, and its ports are the host's own " +
            "(a program listening on 80 is on the host's port 80)"
          : `with network '${mode}' the container shares that container's interfaces`;
    const publishHow = shared
      ? `; publish ports on ${mode.slice('container:'.length)} instead`
      : mode === 'none'
        ? "; use 'bridge' or a user-defined network to publish ports"
        : '';
    if (o.ports?.length) out.push(['ports', `${why}: there is nothing to publish ports from${publishHow}`]);
    if (o.publishAll) out.push(['publishAll', `${why}: there is nothing to publish ports from${publishHow}`]);
    if (o.ip !== undefined) out.push(['ip', `${why}: it has no interface of its own to give a fixed address`]);
    if (o.mac !== undefined && mode !== 'none')
      out.push(['mac', `${why}: it has no interface of its own to give a MAC address`]);
    if (o.networkAliases?.length) out.push(['networkAliases', `${why}: aliases are names on a user-defined network`]);
  } else if (mode === 'bridge' && o.ip !== undefined) {
    out.push([
      'ip',
      'a fixed address needs a user-defined network (as with Docker): create one with a subnet ' +
        "(new Network('name').create({ subnet })) and use network: 'name'",
    ]);
  }
  return out;
}

/**
 * Create options as {@link createOptionsSchema} returns them: checked, with `ports` parsed into
 * bindings (what the record stores).
 */
export type CheckedCreateOptions = Omit<ContainerCreateOptions, 'ports' | 'resources'> & {
  ports?: PortBinding[];
  resources?: CgroupLimits;
};

/**
 * What a container is made from. Unknown options, malformed values and NUL bytes in any string
 * (they would cut the text where it reaches the kernel or a program) are rejected with
 * `INVALID_ARGUMENT`, naming the field, before anything is looked up, pulled or changed.
 */
export interface ContainerCreateOptions extends OutputCapOptions {
  /** Image reference or id. The image must exist locally. */
  image: string;
  /** Replaces the image's `Cmd`. A string is run as a single argument (use an array for argv). */
  command?: string | string[];
  /** Replaces the image's `Entrypoint` (and then clears its `Cmd`, as Docker does); `[]` removes it. */
  entrypoint?: string | string[];
  /** Environment, merged over the image's (later wins). */
  env?: Record<string, string | number | boolean> | string[];
  /** Working directory (absolute); created when missing. Default: the image's, else `/`. */
  workdir?: string;
  /** `user`, `uid`, `user:group` or `uid:gid`, resolved in the container's /etc/passwd and /etc/group. */
  user?: string;
  /** Unique name. Default: none (the id is used). */
  name?: string;
  /** Hostname. Default: the first 12 characters of the id. */
  hostname?: string;
  /** NIS domain name. */
  domainname?: string;
  /** Labels. */
  labels?: Record<string, string>;
  /**
   * Give the container a pseudo-terminal (`docker run -t`): its stdin, stdout and stderr are one
   * terminal, made on the container's own devpts (the program sees `/dev/pts/0`, also bound on
   * `/dev/console`). Its output is logged as one stream (stdout), with the terminal's `\r\n`.
   * Type into it and resize it with {@link Container.attach}.
   */
  tty?: boolean;
  /**
   * Keep stdin open (`docker run -i`): the container's stdin is a pipe the engine holds open for
   * as long as it runs, written through {@link Container.attach}. Without it (and without `tty`)
   * stdin is /dev/null.
   */
  stdin?: boolean;
  /** The terminal's initial size with `tty`. Default 80 columns × 24 rows. */
  consoleSize?: { cols: number; rows: number };
  /**
   * `bridge` (the default network, created on first use), a user-defined network's name, `none`
   * (loopback only), `host` (the host's namespace) or `container:<id|name>` (share that
   * container's network namespace). Default `bridge`. A user-defined network must exist at create
   * (`NETWORK_NOT_FOUND` otherwise), as with Docker.
   */
  network?: 'none' | 'host' | 'bridge' | `container:${string}` | (string & {});
  /** Extra names of the container on its (user-defined) network. */
  networkAliases?: string[];
  /**
   * A fixed IPv4 address on its network: a host address of a user-defined network's subnet,
   * checked at create (as Docker, not with the default `bridge`, `none`, `host` or `container:`).
   */
  ip?: string;
  /** A fixed MAC address (not with network `host` or `container:`). */
  mac?: string;
  /**
   * Published ports: `'8080:80'`, `'127.0.0.1::5432/tcp'`, `'80'`, ranges, `/udp`. Parsed at create
   * (recorded as {@link PortBinding}s; a malformed one is refused naming `ports.<index>`). Refused
   * with network `none` (no interface to publish from), `container:<x>` (publish on that
   * container, as Docker requires) and `host` (the container's ports are the host's own; Docker
   * drops them with a warning, which a library cannot show).
   */
  ports?: string[];
  /** Publish every port the image EXPOSEs on a free host port (not with network `none`, `host` or `container:`). */
  publishAll?: boolean;
  /** Name servers for /etc/resolv.conf (replacing the host's). */
  dns?: string[];
  /** Search domains for /etc/resolv.conf. */
  dnsSearch?: string[];
  /** resolv.conf options (`ndots:2`, …). */
  dnsOptions?: string[];
  /** Extra /etc/hosts entries, `host:ip`. */
  extraHosts?: string[];
  /** Capabilities added to Docker's default set (`NET_ADMIN` or `CAP_NET_ADMIN`; `ALL`). */
  capAdd?: string[];
  /** Capabilities removed from it (`ALL` removes every one). */
  capDrop?: string[];
  /** Every capability (no masked paths are lifted: this is not a way out of the container). */
  privileged?: boolean;
  /** Mount the root file system read-only. */
  readOnlyRootfs?: boolean;
  /**
   * `no-new-privileges` sets no_new_privs for the process. `seccomp=unconfined` runs it without a
   * seccomp filter; `seccomp=<path>` or `seccomp=<JSON object>` under a profile in Docker's
   * format (read at create). Default: Docker's default profile (none with `privileged`).
   */
  securityOpt?: string[];
  /**
   * Remove the container when its process exits. A detached container whose creator has gone
   * is removed by the next berth process that looks at it (list, inspect, wait …).
   */
  autoRemove?: boolean;
  /**
   * Let the container outlive the process that started it (Docker's `-d`). Default false: a
   * container belongs to its creator and is killed when that process exits, so test suites
   * never leak containers. A detached container's parent is berth's monitor, a small native
   * process (tens of KiB) that keeps recording its output with stream and time, and records its
   * exit; any later process can attach, follow its logs, stop and remove it. Restart policies
   * and health checks run only while the creating engine runs.
   */
  detach?: boolean;
  /** Signal `stop()` sends first. Default: the image's `StopSignal`, else SIGTERM. */
  stopSignal?: string | number;
  /** Seconds `stop()` waits before SIGKILL. Default 10; -1 waits forever. */
  stopTimeout?: number;
  /** Volumes, bind mounts and tmpfs mounts. A missing bind source is an error here. */
  mounts?: MountOptions[];
  /**
   * Docker's shorthand: `name:/path[:ro]` (a named volume, created if missing), `/host:/path[:ro|rw]`
   * (a bind; a missing host directory is created) or `/path` (an anonymous volume).
   */
  volumes?: string[];
  /** Mount every volume and bind of these containers (`name[:ro|rw]`). */
  volumesFrom?: string[];
  /** Run a small init as PID 1 that reaps zombies and forwards signals (Docker's `--init`). */
  init?: boolean;
  /**
   * Limits of its output log (Docker's `--log-opt max-size=… max-file=…`):
   * `{ maxSize: '10m', maxFile: 3 }`. When the log file would grow past `maxSize` it is rotated
   * (renamed `output.log.1`, the older ones shifted, the oldest dropped), so at most
   * `maxSize × maxFile` is kept; `logs()` reads across the kept files. Default 20 MiB × 5 files
   * (100 MiB), as Docker's `local` driver.
   */
  log?: LogOptions;
  /**
   * Health check, replacing the image's: `test` is `['CMD', …]`, `['CMD-SHELL', 'cmd']`, a shell
   * command string, or `['NONE']` (disabled); times in ms (defaults 30 s interval and timeout,
   * 3 retries, no start period). Runs while the engine that started the container runs.
   */
  healthcheck?: {
    test: string | string[];
    interval?: number;
    timeout?: number;
    retries?: number;
    startPeriod?: number;
  };
  /**
   * Restart policy, applied while the engine that started the container runs: `no` (default),
   * `on-failure[:N]` (non-zero exits, at most N times), `always`, `unless-stopped`. A container
   * stopped or killed through berth is not restarted. Delays double from 100 ms, as Docker's.
   */
  restart?: 'no' | 'always' | 'unless-stopped' | 'on-failure' | `on-failure:${number}`;
  /** cgroup limits: memory, cpus, pids, cpuset… (`{ memory: '256m', cpus: 0.5, pids: 100 }`). */
  resources?: ResourceOptions;
  /**
   * Resource limits of the container's processes (`docker run --ulimit`), execs included:
   * `[{ name: 'nofile', soft: 1024, hard: 2048 }]` or `['nofile=1024:2048']`; `-1` is unlimited,
   * a missing hard limit is the soft one. Names as Docker's: `core`, `cpu`, `data`, `fsize`,
   * `locks`, `memlock`, `msgqueue`, `nice`, `nofile`, `nproc`, `rss`, `rtprio`, `rttime`,
   * `sigpending`, `stack`, `as`. Never above this process's own hard limit (refused at create).
   * Default: the engine's own limits.
   */
  ulimits?: Array<Ulimit | string>;
  /**
   * Kernel parameters set in the container's own namespaces (`docker run --sysctl`):
   * `{ 'net.ipv4.ip_forward': 1, 'kernel.shmmax': '68719476736' }`. Only namespaced ones, as
   * Docker allows: `net.*` (not with network `host`), `kernel.msgmax`, `kernel.msgmnb`,
   * `kernel.msgmni`, `kernel.sem`, `kernel.shmall`, `kernel.shmmax`, `kernel.shmmni`,
   * `kernel.shm_rmid_forced` and `fs.mqueue.*`; any other is refused at create. A name the
   * kernel does not know fails the start.
   */
  sysctls?: Record<string, string | number>;
  /**
   * The OOM killer's preference for the container's processes, execs included
   * (`docker run --oom-score-adj`): -1000 (never) to 1000 (first). Lowering it below the engine's
   * own needs CAP_SYS_RESOURCE: without it the start fails.
   */
  oomScoreAdj?: number;
  /**
   * Run the container in a user namespace of its own (Docker's userns-remap, Podman's
   * `--userns`): its root is an unprivileged id on the host, so a process that escapes is nobody
   * there. Default: none (the container's root is the host's root, held in by the other
   * namespaces, the capability set and the masked paths).
   *
   * - `'auto'`: 65536 ids, the container's 0–65535, on a free host range of berth's
   *   (host ids 2^30 to 2^31 − 1 in blocks of 65536, never given to two containers of one root at
   *   once, even by several processes), recorded with the container and freed by its removal.
   * - `{ uidMap, gidMap }`: explicit ranges `{ containerId, hostId, size }` (at most 340 each, the
   *   kernel's limit), without overlaps; container id 0 must be mapped and host id 0 may not be.
   *   Explicit ranges are not checked against other containers'.
   *
   * The image's files appear with their own owners through idmapped mounts of the layers, and the
   * container's writes are stored with the ids it sees (so `commit`, `diff` and `export` are as
   * without it). Named and anonymous volumes and the generated `/etc/hosts`, `/etc/hostname` and
   * `/etc/resolv.conf` are idmapped too. Limits:
   *
   * - Host bind mounts are **not** idmapped: their files keep their host owners, which the
   *   container sees as mapped ids or as `nobody` (65534) — its root gets only the "other"
   *   permission bits on the host's root-owned files, and what it writes there belongs to its
   *   host range.
   * - The file systems of the image layers, the container's directory, `runRoot` and the volumes
   *   must support idmapped mounts (ext4, xfs, btrfs, tmpfs on Linux 6.3+ …); the start fails
   *   with the kernel's error otherwise.
   * - Needs `berth-init`, the native init: without it (no C compiler, `BERTH_NATIVE_INIT=0`) the
   *   start fails with `UNSUPPORTED`; an exec needs `berth-exec` likewise.
   * - The network, mount, UTS, IPC, PID and cgroup namespaces stay owned by the host's user
   *   namespace: capabilities count only inside the user namespace, so the container's root
   *   cannot mount, set the hostname, make device nodes (`mknod`), configure the network
   *   (`NET_ADMIN`) or write sysctls, whatever `capAdd` says. Ports below 1024 and ping (ICMP
   *   sockets) are opened to every id in the container's own network namespace, as Docker does;
   *   not with `network: 'host'`.
   * - Not with `privileged` (refused with `INVALID_ARGUMENT`).
   */
  userns?: UsernsOption;
  /** Run time limit, ms from each start: then its whole cgroup is SIGKILLed (exit 137, `state.timedOut`). */
  timeout?: number;
}

/** Parses `SIGTERM`, `TERM`, `15` or 15 to a signal number; undefined when unknown. */
export function parseSignal(s: string | number): number | undefined {
  if (typeof s === 'number') return s > 0 && s < 65 ? s : undefined;
  if (/^\d+$/.test(s)) return parseSignal(Number(s));
  const up = s.toUpperCase();
  return SIGNALS[up.startsWith('SIG') ? up : `SIG${up}`];
}

/**
 * The path of the first string in `value` (a string, or plain objects and arrays of them, keys
 * included: a bad key names its object) that holds a NUL byte; undefined when none does.
 */
export function findNulByte(value: unknown, path: string[] = []): string[] | undefined {
  if (typeof value === 'string') return value.includes('\0') ? path : undefined;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = findNulByte(v, [...path, String(i)]);
      if (found) return found;
    }
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  for (const [k, v] of Object.entries(value)) {
    if (k.includes('\0')) return path;
    const found = findNulByte(v, [...path, k]);
    if (found) return found;
  }
  return undefined;
}

/**
 * Validates `input` with `schema`; throws InvalidArgumentError naming the first bad field. A NUL
 * byte in any string of `input` is refused first, naming its field.
 */
export function parseOptions<T>(schema: z.ZodType<T>, input: unknown, prefix = ''): T {
  const nul = findNulByte(input);
  if (nul !== undefined) {
    throw new InvalidArgumentError(
      [prefix, ...nul].filter(Boolean).join('.') || 'options',
      'contains a NUL byte (text passed to the kernel or a program ends there)',
    );
  }
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    field = [field, key].filter(Boolean).join('.');
    message = `unknown or unsupported option '${key}'`;
  }
  throw new InvalidArgumentError(field || 'options', message, { cause: r.error });
}
