/**
 * Docker's semantics for turning an image config and create options into a container's
 * config (entrypoint/cmd, env merge, workdir, user, hostname, capabilities), and a record
 * into the runtime's {@link RuntimeSpec}. Pure functions.
 *
 * @module
 */
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { resolveCapabilities } from './defaults.js';
import type { RuntimeSpec, UserMount } from '../runtime/plan.js';
import type { PlanInterface } from '../runtime/plan-interface.js';
import { hostsFileContent } from '../network/hosts.js';
import { isDirectory, type ResolvedMount } from './mounts.js';
import { parseSignal, type CheckedCreateOptions, type ContainerCreateOptions } from './options.js';
import { defaultSysctls, resolveSysctls, resolveUlimits, runtimeRlimits } from './limits.js';
import type { CgroupView } from '../runtime/cgroups/index.js';
import type { ContainerRecord } from './record.js';
import { resolveSeccomp, seccompFilter, type SeccompChoice } from './seccomp.js';
import { resolveLogLimits } from './log-options.js';

/** The parts of an image config a container is made from. */
export interface ImageRunConfig {
  /** Image `Cmd`. */
  cmd?: string[] | null;
  /** Image `Entrypoint`. */
  entrypoint?: string[] | null;
  /** Image `Env` (`K=V`). */
  env?: string[] | null;
  /** Image `WorkingDir`. */
  workdir?: string | null;
  /** Image `User`. */
  user?: string | null;
  /** Image `StopSignal`. */
  stopSignal?: string | null;
  /** Image `Volumes` (container paths). */
  volumes?: string[] | null;
  /** Image `ExposedPorts` (`80/tcp`). */
  exposedPorts?: string[] | null;
  /** Image `Healthcheck`, times in ms. */
  healthcheck?: { test: string[]; interval?: number; timeout?: number; retries?: number; startPeriod?: number } | null;
}

/** Docker's default PATH, used when neither the image nor the options set one. */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const asArgv = (v: string | string[]): string[] => (typeof v === 'string' ? [v] : v);

/**
 * Docker's entrypoint/command rule: an entrypoint in the options replaces the image's and
 * drops the image's Cmd; a command replaces Cmd. argv is entrypoint followed by cmd.
 */
export function resolveArgv(
  image: ImageRunConfig,
  opts: Pick<ContainerCreateOptions, 'command' | 'entrypoint'>,
): {
  entrypoint: string[] | null;
  cmd: string[] | null;
  argv: string[];
} {
  const entrypoint = opts.entrypoint !== undefined ? asArgv(opts.entrypoint) : (image.entrypoint ?? null);
  let cmd: string[] | null;
  if (opts.command !== undefined) cmd = asArgv(opts.command);
  else if (opts.entrypoint !== undefined) cmd = null;
  else cmd = image.cmd ?? null;
  const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (argv.length === 0) {
    throw new InvalidArgumentError(
      'command',
      'no command specified: the image has no Cmd or Entrypoint; pass a command',
    );
  }
  return { entrypoint: entrypoint && entrypoint.length ? entrypoint : null, cmd, argv };
}

/** Merges environments: later entries replace earlier ones with the same key; PATH is defaulted. */
export function mergeEnv(image: readonly string[], opts: ContainerCreateOptions['env']): string[] {
  const out = new Map<string, string>();
  const put = (kv: string) => {
    const i = kv.indexOf('=');
    out.set(i < 0 ? kv : kv.slice(0, i), kv);
  };
  image.forEach(put);
  if (Array.isArray(opts)) opts.forEach(put);
  else if (opts) for (const [k, v] of Object.entries(opts)) put(`${k}=${String(v)}`);
  if (!out.has('PATH')) out.set('PATH', DEFAULT_PATH);
  return [...out.values()];
}

/**
 * Builds the record's config from options and the image config. `seccomp`: the choice of
 * `opts.securityOpt`, when the caller has resolved it already (it may read a file).
 */
export function buildConfig(
  id: string,
  image: ImageRunConfig,
  opts: CheckedCreateOptions,
  mounts: ResolvedMount[] = [],
  seccomp: SeccompChoice = resolveSeccomp(opts.securityOpt ?? [], opts.privileged ?? false),
): {
  config: ContainerRecord['config'];
  path: string;
  args: string[];
} {
  const { entrypoint, cmd, argv } = resolveArgv(image, opts);
  const hostname = opts.hostname ?? id.slice(0, 12);
  const env = mergeEnv(image.env ?? [], opts.env);
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${hostname}`);
  const securityOpt = opts.securityOpt ?? [];
  const stopSignal = parseSignal(opts.stopSignal ?? image.stopSignal ?? 'SIGTERM');
  if (stopSignal === undefined)
    throw new InvalidArgumentError('stopSignal', `the image's StopSignal '${image.stopSignal}' is not a signal`);
  return {
    path: argv[0]!,
    args: argv.slice(1),
    config: {
      cmd,
      entrypoint,
      env,
      workdir: opts.workdir ?? (image.workdir || '/'),
      user: opts.user ?? image.user ?? '',
      hostname,
      domainname: opts.domainname ?? '',
      labels: opts.labels ?? {},
      network: opts.network ?? 'bridge',
      net: {
        aliases: opts.networkAliases ?? [],
        ...(opts.ip ? { ip: opts.ip } : {}),
        ...(opts.mac ? { mac: opts.mac } : {}),
        ports: opts.ports ?? [],
        publishAll: opts.publishAll ?? false,
        dns: opts.dns ?? [],
        dnsSearch: opts.dnsSearch ?? [],
        dnsOptions: opts.dnsOptions ?? [],
        extraHosts: opts.extraHosts ?? [],
        exposedPorts: image.exposedPorts ?? [],
      },
      capabilities: resolveCapabilities(opts.capAdd ?? [], opts.capDrop ?? [], opts.privileged ?? false),
      privileged: opts.privileged ?? false,
      readOnlyRootfs: opts.readOnlyRootfs ?? false,
      noNewPrivileges: securityOpt.some((o) => o === 'no-new-privileges' || o === 'no-new-privileges:true'),
      seccomp,
      autoRemove: opts.autoRemove ?? false,
      stopSignal,
      stopTimeout: opts.stopTimeout ?? 10,
      mounts,
      init: opts.init ?? false,
      tty: opts.tty ?? false,
      detach: opts.detach ?? false,
      openStdin: opts.stdin ?? false,
      consoleSize: opts.consoleSize ?? { cols: 80, rows: 24 },
      restart: opts.restart ?? 'no',
      healthcheck: resolveHealthcheck(opts.healthcheck ?? image.healthcheck ?? null),
      resources: opts.resources ?? {},
      ulimits: resolveUlimits(opts.ulimits ?? []),
      sysctls: resolveSysctls(opts.sysctls ?? {}, opts.network ?? 'bridge'),
      oomScoreAdj: opts.oomScoreAdj ?? null,
      log: resolveLogLimits(opts.log, opts),
      userns: null, // allocated when the record is written (see ContainerService.create)
      timeout: opts.timeout ?? null,
    },
  };
}

/**
 * A health check with Docker's defaults filled in (30 s interval and timeout, 3 retries), or null
 * when there is none or it is disabled (`['NONE']`). A string test is a shell command.
 */
export function resolveHealthcheck(
  h: { test: string | string[]; interval?: number; timeout?: number; retries?: number; startPeriod?: number } | null,
): ContainerRecord['config']['healthcheck'] {
  if (!h) return null;
  const test = typeof h.test === 'string' ? ['CMD-SHELL', h.test] : h.test;
  if (test[0] === 'NONE' || test.length === 0) return null;
  return {
    test,
    interval: h.interval ?? 30_000,
    timeout: h.timeout ?? 30_000,
    retries: h.retries ?? 3,
    startPeriod: h.startPeriod ?? 0,
  };
}

/**
 * Where a container's files live: what must outlive a reboot (its writable layer, its log) in
 * `dir` under the engine's root, and what a reboot ends anyway (files generated at each start, the
 * exit status of the current run, the lock) in `runDir` under the engine's `runRoot`, a tmpfs by
 * default (`/run/berth`), where they cost no disk writes.
 */
export interface ContainerPaths {
  /** The container's directory (persistent). */
  dir: string;
  /** The container's volatile directory; made by each start, removed with the container. */
  runDir: string;
  /** overlayfs upper dir (the container's writes). */
  upper: string;
  /** overlayfs work dir. */
  work: string;
  /**
   * Mount point of the root. The root is mounted only inside the container's own mount
   * namespace, so one empty directory serves every container (`<runContainersDir>/.rootfs`):
   * no directory to make and delete per container.
   */
  rootfs: string;
  /** The output log. */
  log: string;
  /** Exit status of the current run, written by the zygote; volatile. */
  exit: string;
  /** Serializes start and mounting the stopped root (across processes); volatile. */
  lock: string;
  /** Generated /etc/hostname. */
  hostname: string;
  /** Generated /etc/hosts. */
  hosts: string;
  /** Generated /etc/resolv.conf. */
  resolvConf: string;
}

/**
 * The file layout of container `id` under `containersDir` (persistent) and `runContainersDir`
 * (volatile; default: the persistent directory itself).
 */
export function containerPaths(containersDir: string, id: string, runContainersDir = containersDir): ContainerPaths {
  const dir = join(containersDir, id);
  const runDir = join(runContainersDir, id);
  return {
    dir,
    runDir,
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    rootfs: join(runContainersDir, '.rootfs'),
    log: join(dir, 'output.log'),
    exit: join(runDir, 'exit.json'),
    lock: join(runDir, 'lock'),
    hostname: join(runDir, 'hostname'),
    hosts: join(runDir, 'hosts'),
    resolvConf: join(runDir, 'resolv.conf'),
  };
}

/** How the runtime mounts one of the container's mounts: resolved host sources, copy-up decided. */
export function userMount(
  m: ResolvedMount,
  volumeDir: (name: string) => string,
  copyUp: (name: string) => boolean,
): UserMount {
  if (m.type === 'tmpfs') {
    const opts = [
      m.size !== undefined ? `size=${m.size}` : '',
      m.mode !== undefined ? `mode=${m.mode.toString(8)}` : '',
    ]
      .filter(Boolean)
      .join(',');
    return { kind: 'tmpfs', target: m.target, readOnly: m.readOnly, data: opts || null };
  }
  if (m.type === 'bind') {
    return {
      kind: 'bind',
      source: m.source,
      target: m.target,
      readOnly: m.readOnly,
      propagation: m.propagation,
      copyUp: false,
      dir: isDirectory(m.source),
    };
  }
  return {
    kind: 'bind',
    source: volumeDir(m.name),
    target: m.target,
    readOnly: m.readOnly,
    propagation: 'rprivate',
    copyUp: !m.nocopy && copyUp(m.name),
    dir: true,
    idmap: true,
  };
}

/** The resource limits and oom_score_adj of a container's processes (its init's and its execs'). */
export function processLimits(c: ContainerRecord['config']): Pick<RuntimeSpec['process'], 'rlimits' | 'oomScoreAdj'> {
  return {
    ...(c.ulimits.length ? { rlimits: runtimeRlimits(c.ulimits) } : {}),
    ...(c.oomScoreAdj !== null ? { oomScoreAdj: c.oomScoreAdj } : {}),
  };
}

/** The overlay's lower dirs of a container, topmost first: its layers' trees, through `layerDir`. */
export function lowerDirs(rec: ContainerRecord, layerDir: (diffId: string) => string): string[] {
  return rec.layers.map((d) => layerDir(d));
}

/** The runtime spec of a container record, over the lower dirs {@link lowerDirs} gives. */
export function runtimeSpec(
  rec: ContainerRecord,
  paths: ContainerPaths,
  layers: string[],
  mounts: UserMount[] = [],
  cgroups: { procs?: string[]; tasks?: string[]; view?: CgroupView } = {},
  net: { interfaces?: PlanInterface[]; joinNetnsPid?: number } = {},
): RuntimeSpec {
  const c = rec.config;
  const sysctls = { ...defaultSysctls(c.network), ...c.sysctls };
  const seccomp = seccompFilter(c.seccomp, c.privileged, c.capabilities);
  return {
    id: rec.id,
    hostname: c.hostname,
    ...(c.domainname ? { domainname: c.domainname } : {}),
    rootfs: {
      lowerDirs: layers,
      upperDir: paths.upper,
      workDir: paths.work,
      mountPoint: paths.rootfs,
      readOnly: c.readOnlyRootfs,
    },
    binds: [
      { source: paths.hostname, target: '/etc/hostname', readOnly: false },
      { source: paths.hosts, target: '/etc/hosts', readOnly: false },
      { source: paths.resolvConf, target: '/etc/resolv.conf', readOnly: false },
    ].filter((b) => !c.mounts.some((m) => m.target === b.target)),
    process: {
      args: [rec.path, ...rec.args],
      env: c.env,
      cwd: c.workdir,
      user: c.user,
      noNewPrivileges: c.noNewPrivileges,
      capabilities: c.capabilities,
      init: c.init,
      ...(c.tty ? { terminal: c.consoleSize } : {}),
      ...(c.openStdin ? { stdin: true } : {}),
      ...processLimits(c),
      ...(seccomp ? { seccomp } : {}),
    },
    ...(Object.keys(sysctls).length ? { sysctls } : {}),
    ...(cgroups.view ? { cgroupView: cgroups.view } : {}),
    network: c.network === 'host' ? 'host' : c.network.startsWith('container:') ? 'join' : 'new',
    mounts,
    ...(c.userns ? { userns: { uidMap: c.userns.uidMap, gidMap: c.userns.gidMap } } : {}),
    cgroupProcs: cgroups.procs ?? [],
    ...(cgroups.tasks?.length ? { cgroupTasks: cgroups.tasks } : {}),
    ...(net.interfaces?.length ? { interfaces: net.interfaces } : {}),
    ...(net.joinNetnsPid ? { joinNetnsPid: net.joinNetnsPid } : {}),
  };
}

/** /etc/hosts for a container with loopback only (or the host's network): `127.0.1.1` names it. */
export function hostsFile(hostname: string, domainname: string, extraHosts: string[] = []): string {
  return hostsFileContent(
    {
      hostname,
      ...(domainname ? { domainname } : {}),
      extraHosts: extraHosts.map((h) => ({
        names: [h.slice(0, h.indexOf(':'))],
        address: h.slice(h.indexOf(':') + 1),
      })),
    },
    [],
  );
}

/**
 * resolv.conf for a container, from the host's: nameservers on loopback are dropped when the
 * container has its own network namespace (they are unreachable from it), as Docker does.
 */
export function resolvConfFile(
  hostResolvConf: string,
  ownNetwork: boolean,
  over: { dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[] } = {},
): string {
  const replaced = (re: RegExp, given: string[] | undefined) =>
    given?.length ? (l: string) => !re.test(l) : () => true;
  const keepNs = replaced(/^\s*nameserver\s/, over.dns);
  const keepSearch = replaced(/^\s*(search|domain)\s/, over.dnsSearch);
  const keepOpts = replaced(/^\s*options\s/, over.dnsOptions);
  const lines = hostResolvConf.split('\n').filter((l) => {
    if (!keepNs(l) || !keepSearch(l) || !keepOpts(l)) return false;
    if (!ownNetwork) return true;
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    return !m || !(m[1]!.startsWith('127.') || m[1] === '::1');
  });
  for (const ns of over.dns ?? []) lines.push(`nameserver ${ns}`);
  if (over.dnsSearch?.length) lines.push(`search ${over.dnsSearch.join(' ')}`);
  if (over.dnsOptions?.length) lines.push(`options ${over.dnsOptions.join(' ')}`);
  return (
    lines
      .filter((l, i) => l !== '' || i < lines.length - 1)
      .join('\n')
      .trimEnd() + '\n'
  );
}
