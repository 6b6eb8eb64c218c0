/**
 * The documented shapes returned by `container.inspect()` and `Container.list()`, and the
 * mapping from records to them.
 *
 * @module
 */
import type { IdMapping } from '../runtime/plan.js';
import type { Attachment } from '../network/service.js';
import type { ContainerRecord, ContainerStatus } from './record.js';
import { isActive } from './status.js';

/** What `container.inspect()` returns. */
export interface ContainerInfo {
  /** Full id (64 hex characters). */
  id: string;
  /** Name, without Docker's leading slash; empty when none was given. */
  name: string;
  /** When it was created. */
  created: Date;
  /** The image reference it was created from, as given. */
  image: string;
  /** The image's id (`sha256:…`). */
  imageId: string;
  /** argv[0] of the process. */
  path: string;
  /** The rest of argv. */
  args: string[];
  /** Current state, recomputed from the kernel. */
  state: {
    /** Docker's status word. */
    status: ContainerStatus;
    /** True while the process runs (also when paused). */
    running: boolean;
    /** True while paused. */
    paused: boolean;
    /** True while restarting. */
    restarting: boolean;
    /** True when the kernel's OOM killer ended it. */
    oomKilled: boolean;
    /** True when dead. */
    dead: boolean;
    /** Host pid of its PID 1 while it runs; 0 otherwise. */
    pid: number;
    /** Exit code of the last run; absent before the first exit. */
    exitCode?: number;
    /** The signal that ended the last run, when one did. */
    signal?: number;
    /** Why the last start or run failed; empty when it did not. */
    error: string;
    /** How many times the restart policy restarted it. */
    restartCount: number;
    /** Health, when it has a health check (`status: 'none'` otherwise); the last 5 results in `log`. */
    health: {
      status: 'none' | 'starting' | 'healthy' | 'unhealthy';
      failingStreak: number;
      log: Array<{ start: string; end: string; exitCode: number; output: string }>;
    };
    /** When the last run started; absent before the first start. */
    startedAt?: Date;
    /** When the last run ended; absent before the first exit. */
    finishedAt?: Date;
    /** True when the last run was killed for outliving the container's `timeout` (its run time limit). */
    timedOut: boolean;
    /**
     * The streams of the last run of which the output cap (`maxOutput`) dropped bytes, once that
     * run ended (the log writer reports it with the exit); absent when none was cut.
     */
    outputTruncated?: { stdout?: true; stderr?: true };
  };
  /** The configuration it runs with. */
  config: {
    hostname: string;
    domainname: string;
    user: string;
    env: string[];
    cmd: string[] | null;
    entrypoint: string[] | null;
    workdir: string;
    labels: Record<string, string>;
    stopSignal: number;
    stopTimeout: number;
    /** It has a terminal (`tty`). */
    tty: boolean;
    /** Its stdin is kept open (`stdin`). */
    openStdin: boolean;
  };
  /** Host-level settings. */
  hostConfig: {
    autoRemove: boolean;
    /** It outlives the process that started it. */
    detach: boolean;
    privileged: boolean;
    readOnlyRootfs: boolean;
    capabilities: string[];
    noNewPrivileges: boolean;
    /** Its seccomp profile: Docker's default, none (`seccomp=unconfined`, or privileged), or its own (`profile`). */
    seccomp: 'default' | 'unconfined' | 'profile';
    networkMode: string;
    /** Resource limits (`ulimits`); -1 is unlimited. */
    ulimits: Array<{ name: string; soft: number; hard: number }>;
    /** Kernel parameters set in its namespaces (`sysctls`). */
    sysctls: Record<string, string>;
    /** Its processes' oom_score_adj; null when left as the engine's. */
    oomScoreAdj: number | null;
    /** Its user namespace (`userns`): the maps, and whether they are an `'auto'` range; null without one. */
    userns: { auto: boolean; uidMap: IdMapping[]; gidMap: IdMapping[] } | null;
    /** Limits of its output log (`log`): bytes per file, files kept; its output cap (`maxOutput`, `keep`). */
    log: { maxSize: number; maxFile: number; maxOutput?: number; keep?: 'head' | 'tail' };
  };
  /** The file berth records the container's output in. */
  logPath: string;
  /** Its networks, addresses and published ports (empty while it does not run on a network). */
  networkSettings: NetworkSettings;
}

/** A container's place on its networks, as `docker inspect` reports `NetworkSettings`. */
export interface NetworkSettings {
  /** Its address on its first network ('' when none). */
  ipAddress: string;
  /** Published ports. */
  ports: Array<{ containerPort: number; protocol: string; hostIp: string; hostPort: number }>;
  /** Per network: address (CIDR), gateway, MAC, aliases. */
  networks: Record<string, { ipAddress: string; gateway: string; macAddress: string; aliases: string[] }>;
}

/** The {@link NetworkSettings} of a container's attachments. */
export function toNetworkSettings(atts: Attachment[]): NetworkSettings {
  const out: NetworkSettings = { ipAddress: '', ports: [], networks: {} };
  for (const { network, endpoint } of atts) {
    const prefix = network.subnet.split('/')[1];
    out.networks[network.name] = {
      ipAddress: `${endpoint.address}/${prefix}`,
      gateway: network.gateway,
      macAddress: endpoint.mac,
      aliases: endpoint.aliases,
    };
    out.ipAddress ||= endpoint.address;
    out.ports.push(...endpoint.ports);
  }
  return out;
}

/** One row of `Container.list()`. */
export interface ContainerSummary {
  /** Full id. */
  id: string;
  /** Name (empty when none). */
  name: string;
  /** Image reference, as given. */
  image: string;
  /** Image id. */
  imageId: string;
  /** The command line, joined with spaces. */
  command: string;
  /** When it was created. */
  created: Date;
  /** Docker's status word. */
  state: ContainerStatus;
  /** Human status, as `docker ps` prints it: `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`. */
  status: string;
  /** Labels. */
  labels: Record<string, string>;
}

/** Maps a record to {@link ContainerInfo}. */
export function toInfo(
  r: ContainerRecord,
  logPath: string,
  networkSettings: NetworkSettings = { ipAddress: '', ports: [], networks: {} },
): ContainerInfo {
  const s = r.state;
  const active = isActive(s.status);
  return {
    id: r.id,
    name: r.name,
    created: new Date(r.created),
    image: r.image,
    imageId: r.imageId,
    path: r.path,
    args: r.args,
    state: {
      status: s.status,
      running: active,
      paused: s.status === 'paused',
      restarting: s.status === 'restarting',
      oomKilled: s.oomKilled,
      dead: s.status === 'dead',
      pid: active ? s.pid : 0,
      ...(s.exitCode !== null ? { exitCode: s.exitCode } : {}),
      ...(s.signal !== null ? { signal: s.signal } : {}),
      error: s.error,
      restartCount: s.restartCount,
      health: s.health,
      ...(s.startedAt ? { startedAt: new Date(s.startedAt) } : {}),
      ...(s.finishedAt ? { finishedAt: new Date(s.finishedAt) } : {}),
      timedOut: s.timedOut,
      ...(s.outputTruncated ? { outputTruncated: s.outputTruncated } : {}),
    },
    config: {
      hostname: r.config.hostname,
      domainname: r.config.domainname,
      user: r.config.user,
      env: r.config.env,
      cmd: r.config.cmd,
      entrypoint: r.config.entrypoint,
      workdir: r.config.workdir,
      labels: r.config.labels,
      stopSignal: r.config.stopSignal,
      stopTimeout: r.config.stopTimeout,
      tty: r.config.tty,
      openStdin: r.config.openStdin,
    },
    hostConfig: {
      autoRemove: r.config.autoRemove,
      detach: r.config.detach,
      privileged: r.config.privileged,
      readOnlyRootfs: r.config.readOnlyRootfs,
      capabilities: r.config.capabilities,
      noNewPrivileges: r.config.noNewPrivileges,
      seccomp: typeof r.config.seccomp === 'string' ? r.config.seccomp : 'profile',
      networkMode: r.config.network,
      ulimits: r.config.ulimits,
      sysctls: r.config.sysctls,
      oomScoreAdj: r.config.oomScoreAdj,
      userns: r.config.userns,
      log: r.config.log,
    },
    logPath,
    networkSettings,
  };
}

function ago(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return s === 1 ? 'Less than a second' : `${s} seconds`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.round(m / 60);
  return h < 48 ? (h === 1 ? 'About an hour' : `${h} hours`) : `${Math.round(h / 24)} days`;
}

/** Maps a record to {@link ContainerSummary}. */
export function toSummary(r: ContainerRecord, now = Date.now()): ContainerSummary {
  const s = r.state;
  let status = 'Created';
  if (s.status === 'running' && s.startedAt) status = `Up ${ago(now - Date.parse(s.startedAt))}`;
  else if (s.status === 'paused' && s.startedAt) status = `Up ${ago(now - Date.parse(s.startedAt))} (Paused)`;
  else if (s.status === 'exited' && s.finishedAt)
    status = `Exited (${s.exitCode ?? 0}) ${ago(now - Date.parse(s.finishedAt))} ago`;
  else if (s.status === 'dead') status = 'Dead';
  return {
    id: r.id,
    name: r.name,
    image: r.image,
    imageId: r.imageId,
    command: [r.path, ...r.args].join(' '),
    created: new Date(r.created),
    state: s.status,
    status,
    labels: r.config.labels,
  };
}
