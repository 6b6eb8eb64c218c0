/**
 * The options of the public `Container` handle's methods: their types (part of the public API)
 * and the schemas that check them.
 *
 * @module
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { Engine } from '../engine.js';
import { CONTAINER_STATUSES } from './record.js';
import type { ContainerCreateOptions } from './options.js';
import type { LogLine } from './logs.js';
import type { ExecOptions } from './exec.js';
import type { CgroupStats } from '../runtime/cgroups/index.js';
import type { WaitForOptions } from './wait-for.js';
import { stopShape } from './call-stop.js';

/** One sample of {@link Container.stats}. */
export interface ContainerStats extends CgroupStats {
  /** When it was taken. */
  time: Date;
}

/** Options of {@link Container.commit}, as `docker commit`. */
export interface ContainerCommitOptions {
  /** Tag for the new image (`repo[:tag]`). Default: untagged. */
  ref?: string;
  /** Dockerfile instructions applied to the config (`CMD`, `ENV`, `LABEL`, `EXPOSE`, …). */
  changes?: string | string[];
  /** Commit message (the image's comment). */
  message?: string;
  /** Author. */
  author?: string;
}

/** Schema of {@link ContainerCommitOptions}. */
export const commitSchema = z.strictObject({
  ref: z.string().min(1).optional(),
  changes: z.union([z.string(), z.array(z.string())]).optional(),
  message: z.string().optional(),
  author: z.string().optional(),
});

/** What a container name may be (Docker's rule; a leading slash is dropped). */
export const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Options every handle method accepts. */
export interface EngineOption {
  /** The engine to use. Default {@link Engine.default}. */
  engine?: Engine;
}

/** Options of {@link Container.create}. */
export type CreateOptions = ContainerCreateOptions & EngineOption;

/**
 * Options of {@link Container.run}: create options without `image` and `command`, and start's
 * `waitFor` and `signal` (`timeout` is the create option: the container's run time limit).
 */
export type RunOptions = Omit<ContainerCreateOptions, 'image' | 'command'> &
  EngineOption &
  Omit<ContainerStartOptions, 'timeout'>;

/** Filters of {@link Container.list}. */
export interface ContainerListOptions extends EngineOption {
  /** Include stopped containers. Default: running ones only, as `docker ps`. */
  all?: boolean;
  /** `key` or `key=value` (one or several; all must match). */
  label?: string | string[];
  /** Name substring (one or several; any may match). */
  name?: string | string[];
  /** Status (one or several; any may match). */
  status?: (typeof CONTAINER_STATUSES)[number] | Array<(typeof CONTAINER_STATUSES)[number]>;
}

/** Result of {@link Container.wait}. */
export interface WaitResult {
  /** Exit code (128 + signal number when a signal ended it). */
  exitCode: number;
}

/**
 * The output of a container: await it for all the text, or iterate it for lines with stream and
 * time. With `follow`, both go on until the container stops.
 */
export interface ContainerLogs extends PromiseLike<string>, AsyncIterable<LogLine> {}

/** `v` as a list (absent: empty). */
export const toList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Schema of {@link ContainerListOptions}. */
export const listSchema = z.strictObject({
  engine: z.unknown().optional(),
  all: z.boolean().optional(),
  label: z.union([z.string(), z.array(z.string())]).optional(),
  name: z.union([z.string(), z.array(z.string())]).optional(),
  status: z.union([z.enum(CONTAINER_STATUSES), z.array(z.enum(CONTAINER_STATUSES))]).optional(),
});

/** Options of {@link Container.exec}. */
export interface ContainerExecOptions {
  /** Environment merged over the container's. */
  env?: Record<string, string | number | boolean> | string[];
  /** `user[:group]`; default the container's. */
  user?: string;
  /** Working directory; default the container's. */
  workdir?: string;
  /** Run it on a new terminal (`docker exec -t`): all its output is then in `stdout`, with `\r\n`. */
  tty?: boolean;
  /** The terminal's size with `tty`. Default 80 columns × 24 rows. */
  consoleSize?: { cols: number; rows: number };
}

/** What {@link Container.exec} takes beyond {@link ContainerExecOptions}. */
export interface ContainerExecRunOptions extends ContainerExecOptions {
  /**
   * Written to the command's stdin, which is then closed (`echo … | docker exec -i`). Without it
   * stdin is /dev/null. Ignored with `tty`.
   */
  input?: string | Buffer | Readable;
  /**
   * Keep at most this many bytes of each of stdout and stderr (the rest is dropped, never held in
   * memory); the result's `truncated` says which stream was cut. Default: no limit.
   */
  maxOutput?: number;
  /** Which bytes `maxOutput` keeps: the first (`head`, default) or the last (`tail`). */
  keep?: 'head' | 'tail';
  /** Kills the command and rejects with `ABORTED` (an `AbortedError`) when it fires. */
  signal?: AbortSignal;
  /** Kills the command and rejects with `TIMEOUT` after this many milliseconds. */
  timeout?: number;
}

/** Options of {@link Container.spawn}. */
export interface ContainerSpawnOptions extends ContainerExecOptions {
  /** Give the process a stdin pipe (`docker exec -i`). Default true; false: /dev/null. Ignored with `tty`. */
  stdin?: boolean;
  /** Kills the process (SIGKILL) when it fires; `exited` rejects with `ABORTED`. Already fired: nothing starts. */
  signal?: AbortSignal;
  /** Kills the process (SIGKILL) after this many milliseconds from `spawn()`; `exited` rejects with `TIMEOUT`. */
  timeout?: number;
}

/** Options of {@link Container.attach}. */
export interface ContainerAttachOptions {
  /** Replay the output recorded so far before following (`docker attach` with logs). Default false. */
  logs?: boolean;
  /** Take the container's input (when it has one). Default true. */
  stdin?: boolean;
}

/** Schema of a terminal size. */
export const consoleSize = z.strictObject({
  cols: z.number().int().min(1).max(65535),
  rows: z.number().int().min(1).max(65535),
});
/** Schema of {@link ContainerExecOptions}. */
export const execSchema = z.strictObject({
  env: z
    .union([
      z.record(z.string().regex(/^[^=\0]+$/), z.union([z.string(), z.number(), z.boolean()])),
      z.array(z.string().regex(/^[^=\0][^\0]*$/)),
    ])
    .optional(),
  user: z
    .string()
    .regex(/^[^:\s]*(:[^:\s]+)?$/, 'expected user[:group]')
    .optional(),
  workdir: z
    .string()
    .refine((w) => w.startsWith('/'), 'must be an absolute path')
    .optional(),
  tty: z.boolean().optional(),
  consoleSize: consoleSize.optional(),
});
/** Schema of {@link ContainerExecRunOptions}. */
export const execRunSchema = execSchema.extend({
  input: z.union([z.string(), z.instanceof(Buffer), z.instanceof(Readable)]).optional(),
  maxOutput: z.number().int().positive().optional(),
  keep: z.enum(['head', 'tail']).optional(),
  ...stopShape,
});
/** Schema of {@link ContainerSpawnOptions}. */
export const spawnSchema = execSchema.extend({ stdin: z.boolean().optional(), ...stopShape });
/** Schema of {@link ContainerAttachOptions}. */
export const attachSchema = z.strictObject({ logs: z.boolean().optional(), stdin: z.boolean().optional() });

/** The service-level exec options for public exec/spawn options. */
export function toExecOptions(o: ContainerSpawnOptions): ExecOptions {
  return {
    ...(o.env !== undefined ? { env: o.env } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
    ...(o.tty ? { terminal: o.consoleSize ?? { cols: 80, rows: 24 } } : {}),
    stdin: !o.tty && o.stdin !== false,
  };
}

/** A point in time: a Date, epoch milliseconds or a date string. */
export const time = z.union([
  z.date(),
  z.number(),
  z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date'),
]);
/** Schema of `LogsOptions`. */
export const logsSchema = z.strictObject({
  follow: z.boolean().optional(),
  since: time.optional(),
  until: time.optional(),
  tail: z.number().int().min(0).optional(),
  timestamps: z.boolean().optional(),
  stdout: z.boolean().optional(),
  stderr: z.boolean().optional(),
  ...stopShape,
});

/** Options of {@link Container.connect}. */
export interface ContainerConnectOptions {
  /** Gives up when aborted (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Gives up after this many ms with a `TIMEOUT` error. Default: none (loopback answers at once). */
  timeout?: number;
}

/** A TCP port number. */
export const tcpPortSchema = z.number().int().min(1).max(65535);

/** Schema of {@link Container.connect}'s port and options. */
export const connectSchema = z.strictObject({
  port: tcpPortSchema,
  ...stopShape,
});

/** Schema of {@link WaitForOptions} (at least one condition). */
export const waitForSchema = z
  .strictObject({
    log: z.union([z.instanceof(RegExp), z.string().min(1)]).optional(),
    port: tcpPortSchema.optional(),
    http: z
      .strictObject({
        path: z.string().startsWith('/').optional(),
        port: tcpPortSchema,
        status: z.number().int().min(100).max(599).optional(),
      })
      .optional(),
    healthy: z.literal(true).optional(),
    exec: z.array(z.string().min(1)).min(1).optional(),
    timeout: z.number().int().positive().optional(),
  })
  .refine(
    (w) => w.log ?? w.port ?? w.http ?? w.healthy ?? w.exec,
    'expected at least one of log, port, http, healthy, exec',
  );

/** Options of {@link Container.start}. */
export interface ContainerStartOptions {
  /** Resolve only once these conditions hold (see {@link WaitForOptions}). */
  waitFor?: WaitForOptions;
  /**
   * Cancels the call with `ABORTED` (the signal's reason as cause): `start` leaves the container
   * stopped, `run` removes it. Already fired: nothing is created or started.
   */
  signal?: AbortSignal;
  /**
   * `start` only: cancels it after this many milliseconds (`waitFor` included) with `TIMEOUT`,
   * leaving the container stopped. (On `run`, `timeout` is the container's run time limit.)
   */
  timeout?: number;
  /**
   * Exactly what the program reads on its stdin, then end of file (`echo … | docker run -i`): a
   * pipe in place before its first read, written in the background once it runs (a start never
   * waits for the program to read). A program that exits without reading it all is fine (the rest
   * is dropped; a Readable is destroyed then, at its next chunk). Refused (`INVALID_ARGUMENT`, field
   * `input`) with `tty` or a restart policy, and (`INVALID_STATE`) for a container that runs
   * already. Written by this process: a detached container whose creator exits before the whole
   * input is written reads end of file there.
   */
  input?: string | Buffer | Readable;
}

/** Schema of {@link ContainerStartOptions}. */
export const startSchema = z.strictObject({ waitFor: waitForSchema.optional(), ...stopShape });
