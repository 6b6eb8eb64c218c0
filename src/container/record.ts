/**
 * The container record: what is persisted for each container under `<root>/containers/<id>.json`.
 * Config is written once at create; `state` changes through the transitions in `state.ts`.
 *
 * @module
 */
import { z } from 'zod';
import { resolvedMountSchema } from './mounts.js';
import { seccompChoiceSchema } from './seccomp.js';
import { usernsRecordSchema } from './userns.js';
import { parsePortSpec, portBindingSchema } from '../network/ports.js';

/**
 * Published ports as recorded: parsed bindings. Records written before ports were parsed at create
 * hold Docker's strings; those are parsed when read (one that does not parse fails the record's
 * check, naming it).
 */
const recordedPortsSchema = z.preprocess(
  (v) =>
    Array.isArray(v)
      ? v.flatMap((p: unknown) => {
          if (typeof p !== 'string') return [p];
          try {
            return parsePortSpec(p);
          } catch {
            // Left as written: the schema then refuses the record, naming the entry.
            return [p];
          }
        })
      : v,
  z.array(portBindingSchema),
);
import { logLimitsSchema } from './log-options.js';
import { DEFAULT_LOG_LIMITS } from '../runtime/log-writer.js';
import type { CgroupLimits } from '../runtime/cgroups/index.js';

/**
 * Schema of {@link CgroupLimits} as recorded. Records written before the limits were typed hold the
 * same numbers and strings (they were resolved at create then too).
 */
const cgroupLimitsSchema: z.ZodType<CgroupLimits> = z.object({
  memory: z.number().int().optional(),
  memoryReservation: z.number().int().optional(),
  memorySwap: z.number().int().optional(),
  cpuQuota: z.number().int().optional(),
  cpuPeriod: z.number().int().optional(),
  cpuShares: z.number().int().optional(),
  cpusetCpus: z.string().optional(),
  cpusetMems: z.string().optional(),
  pids: z.number().int().optional(),
});

/** Docker's container statuses. */
export const CONTAINER_STATUSES = ['created', 'running', 'paused', 'restarting', 'exited', 'dead'] as const;

/** A container status, as Docker reports it. */
export type ContainerStatus = (typeof CONTAINER_STATUSES)[number];

/** A layer's diffID, as the layer store names it (`sha256:<64 hex>`). */
export const DIFF_ID = /^sha256:[0-9a-f]{64}$/;

/**
 * A snapshot's layer, as a record names it among its layers (`snapshot:<64 hex>`, the snapshot's
 * id): its tree is the snapshot's (see `snapshot-store.ts`), not the layer store's.
 */
export const SNAPSHOT_LAYER = /^snapshot:[0-9a-f]{64}$/;

/** Whether `id` names a layer a record may hold: a diffID or a snapshot's layer. */
export function isLayerId(id: unknown): id is string {
  return typeof id === 'string' && (DIFF_ID.test(id) || SNAPSHOT_LAYER.test(id));
}

/** What a record's layer is checked against (records of every earlier version hold diffIDs only). */
export const LAYER_ID_MESSAGE = 'expected a layer diffID (sha256:<64 hex>) or a snapshot layer (snapshot:<64 hex>)';

const layerIdSchema = z.string().refine(isLayerId, LAYER_ID_MESSAGE);

/** The store's directory of a layer's tree (`<root>/layers/sha256/<hex>/fs`), as older records held it. */
const LAYER_FS_DIR = /\/sha256\/([0-9a-f]{64})\/fs\/?$/;

/**
 * Records written before layers were stored as ids hold `layerDirs`, the layers' absolute tree
 * directories (topmost first); read, they become `layers`, the diffIDs in the same order. A path
 * that does not name a stored layer's tree stays as it is, and fails the record's check naming it.
 * The record is written in the new form the next time it is saved.
 */
function migrateLayerDirs(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !('layerDirs' in v) || 'layers' in v) return v;
  const { layerDirs, ...rest } = v as { layerDirs: unknown };
  if (!Array.isArray(layerDirs)) return v;
  const layers = layerDirs.map((d: unknown) => {
    const m = typeof d === 'string' ? LAYER_FS_DIR.exec(d) : null;
    return m ? `sha256:${m[1]}` : d;
  });
  return { ...rest, layers };
}

/** The record's fields as written today. */
const recordFields = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  created: z.string(),
  image: z.string(),
  imageId: z.string(),
  path: z.string(),
  args: z.array(z.string()),
  config: z.object({
    cmd: z.array(z.string()).nullable(),
    entrypoint: z.array(z.string()).nullable(),
    env: z.array(z.string()),
    workdir: z.string(),
    user: z.string(),
    hostname: z.string(),
    domainname: z.string(),
    labels: z.record(z.string(), z.string()),
    network: z.string(),
    net: z
      .object({
        aliases: z.array(z.string()),
        ip: z.string().optional(),
        mac: z.string().optional(),
        ports: recordedPortsSchema,
        publishAll: z.boolean(),
        dns: z.array(z.string()),
        dnsSearch: z.array(z.string()),
        dnsOptions: z.array(z.string()),
        extraHosts: z.array(z.string()),
        exposedPorts: z.array(z.string()),
      })
      .default({
        aliases: [],
        ports: [],
        publishAll: false,
        dns: [],
        dnsSearch: [],
        dnsOptions: [],
        extraHosts: [],
        exposedPorts: [],
      }),
    capabilities: z.array(z.string()),
    privileged: z.boolean(),
    readOnlyRootfs: z.boolean(),
    noNewPrivileges: z.boolean(),
    seccomp: seccompChoiceSchema.default('default'),
    autoRemove: z.boolean(),
    stopSignal: z.number().int(),
    stopTimeout: z.number().int(),
    mounts: z.array(resolvedMountSchema),
    /** Resource limits, resolved at create (kernel units, as a cgroup driver takes them). */
    resources: cgroupLimitsSchema.default({}),
    ulimits: z.array(z.object({ name: z.string(), soft: z.number().int(), hard: z.number().int() })).default([]),
    sysctls: z.record(z.string(), z.string()).default({}),
    oomScoreAdj: z.number().int().nullable().default(null),
    /** The user namespace's maps (`userns`), null without one. */
    userns: usernsRecordSchema.default(null),
    init: z.boolean().default(false),
    /** Limits of the output log (bytes per file, files kept). */
    log: logLimitsSchema.default({ ...DEFAULT_LOG_LIMITS }),
    tty: z.boolean().default(false),
    detach: z.boolean().default(false),
    openStdin: z.boolean().default(false),
    consoleSize: z.object({ cols: z.number().int(), rows: z.number().int() }).default({ cols: 80, rows: 24 }),
    restart: z.string().default('no'),
    healthcheck: z
      .object({
        test: z.array(z.string()),
        interval: z.number(),
        timeout: z.number(),
        retries: z.number(),
        startPeriod: z.number(),
      })
      .nullable()
      .default(null),
    /** Run time limit in ms (the `timeout` create option); null without one. */
    timeout: z.number().int().positive().nullable().default(null),
  }),
  /**
   * The image's layers as diffIDs, topmost first (the overlay's lower dirs, through the layer
   * store); a container forked from a snapshot has the snapshot's layer on top (`snapshot:<hex>`).
   */
  layers: z.array(layerIdSchema),
  state: z.object({
    status: z.enum(CONTAINER_STATUSES),
    pid: z.number().int(),
    startTime: z.number().int(),
    bootId: z.string(),
    ownerPid: z.number().int(),
    ownerStart: z.number().int(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    exitCode: z.number().int().nullable(),
    signal: z.number().int().nullable(),
    error: z.string(),
    oomKilled: z.boolean().default(false),
    restartCount: z.number().int().default(0),
    health: z
      .object({
        status: z.enum(['none', 'starting', 'healthy', 'unhealthy']),
        failingStreak: z.number().int(),
        log: z.array(z.object({ start: z.string(), end: z.string(), exitCode: z.number().int(), output: z.string() })),
      })
      .default({ status: 'none', failingStreak: 0, log: [] }),
    /** Stopped or killed through berth: the restart policy does not apply. */
    manualStop: z.boolean().default(false),
    /**
     * Where an attacher finds the running process's stdin: the numbers, in the process that owns
     * the run (`ownerPid`: the zygote, or a detached container's monitor, which holds the write
     * end of its stdin pipe and the master of its terminal), of those fds (copied with
     * pidfd_getfd). Records written before this held the owner here a second time (ignored).
     */
    stdio: z
      .object({ stdinFd: z.number().int().optional(), ttyFd: z.number().int().optional() })
      .nullable()
      .default(null),
    /** The last run was killed for outliving `config.timeout`. */
    timedOut: z.boolean().default(false),
    /** Streams of the last run of which the output cap dropped bytes (recorded at its exit); null when none did. */
    outputTruncated: z
      .object({ stdout: z.literal(true).optional(), stderr: z.literal(true).optional() })
      .nullable()
      .default(null),
  }),
});

/**
 * Schema of the persisted record (validated on every read; records of older versions are
 * migrated by it). `.out` is the record's own object schema.
 */
export const containerRecordSchema = z.preprocess(migrateLayerDirs, recordFields);

/** The persisted record of one container. */
export type ContainerRecord = z.infer<typeof recordFields>;

/** The mutable part of a record. */
export type ContainerState = ContainerRecord['state'];

/** The state of a container that never ran. */
export function initialState(): ContainerState {
  return {
    status: 'created',
    pid: 0,
    startTime: 0,
    bootId: '',
    ownerPid: 0,
    ownerStart: 0,
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    signal: null,
    error: '',
    oomKilled: false,
    restartCount: 0,
    manualStop: false,
    stdio: null,
    timedOut: false,
    outputTruncated: null,
    health: { status: 'none', failingStreak: 0, log: [] },
  };
}

/** How messages name a container: its name in quotes, or the short id when it has none. */
export function labelOf(rec: ContainerRecord): string {
  return rec.name ? `'${rec.name}'` : rec.id.slice(0, 12);
}
