/**
 * Wait strategies (`waitFor` of `Container.run` and `start`): resolves once every condition given
 * holds — a log line matches, a TCP port listens in the container's network namespace, an HTTP
 * GET through a socket made there answers, the health check reports healthy, a command exits 0 —
 * and rejects with the container's last log lines when the timeout passes or the container stops
 * first. Each condition, once met, counts as met. The container is left as it is.
 *
 * @module
 */
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, StateError, TimeoutError } from '../errors.js';
import type { ConnectSocketOptions } from './connect.js';
import type { ExecResult } from './exec.js';
import type { LogLine, LogsOptions } from './logs.js';
import { labelOf, type ContainerRecord } from './record.js';
import { isActive } from './status.js';

/** What to wait for; every condition given must hold. */
export interface WaitForOptions {
  /** A line of stdout or stderr (of this start) matching this pattern, or containing this text. */
  log?: RegExp | string;
  /** A TCP socket listening on this port in the container's network namespace. */
  port?: number;
  /** An HTTP GET of `path` (default `/`) on `port` of the container's loopback answering `status` (default: any 200–399). */
  http?: { path?: string; port: number; status?: number };
  /** The container's health check reporting `healthy` (the container must have one). */
  healthy?: boolean;
  /** This command, run in the container, exiting with 0. */
  exec?: string[];
  /** How long to wait in ms before failing with `TIMEOUT`. Default 60000. */
  timeout?: number;
}

/** What waiting needs of the container service. */
export interface WaitForDeps {
  /** The record, its status refreshed. */
  get(ref: string): Promise<ContainerRecord>;
  /** The container's log as lines. */
  logLines(ref: string, o: LogsOptions): AsyncGenerator<LogLine>;
  /** Runs a command in the container. */
  exec(ref: string, command: string[]): Promise<ExecResult>;
  /** A TCP connection to the container's loopback. */
  connect(ref: string, port: number, o: ConnectSocketOptions): Promise<Socket>;
  /** Whether something listens on a TCP port in the container's namespace. */
  listensOn(ref: string, port: number): Promise<boolean>;
}

/** The default of {@link WaitForOptions.timeout}. */
export const DEFAULT_WAIT_TIMEOUT = 60_000;
/** How many log lines a failure shows. */
const LAST_LINES = 20;
/** The pause between two rounds of checks. */
const POLL_MS = 50;

type Condition = Exclude<keyof WaitForOptions, 'timeout'>;

/**
 * Waits until every condition of `spec` holds for container `ref`, started at `since` (ms since
 * the epoch: older log lines do not count).
 *
 * @throws TimeoutError `TIMEOUT` after `spec.timeout`; StateError `NOT_RUNNING` when the container
 * stops first; both messages end with its last 20 log lines. InvalidArgumentError when
 * `healthy` is asked of a container without a health check. When `signal` fires, rejects with
 * its reason at the next round (the caller makes that its call's error).
 */
export async function waitForReady(
  deps: WaitForDeps,
  ref: string,
  spec: WaitForOptions,
  since: number,
  signal?: AbortSignal,
): Promise<void> {
  const timeout = spec.timeout ?? DEFAULT_WAIT_TIMEOUT;
  const deadline = Date.now() + timeout;
  const pending = new Set(
    (['log', 'port', 'http', 'healthy', 'exec'] as const).filter((k) => spec[k] !== undefined && spec[k] !== false),
  );
  const pattern = spec.log === undefined ? undefined : toMatcher(spec.log);
  const logFrom = { since };
  for (;;) {
    signal?.throwIfAborted();
    const rec = await deps.get(ref);
    if (pending.has('healthy') && !hasHealthcheck(rec))
      throw new InvalidArgumentError('waitFor.healthy', `container ${labelOf(rec)} has no health check`);
    if (!isActive(rec.state.status) || rec.state.status === 'restarting') {
      const what = `container ${labelOf(rec)} stopped (exit code ${rec.state.exitCode}) before ${describe(spec, pending)}`;
      throw new StateError(rec.state.status, 'wait for', await withLastLines(deps, ref, what), 'NOT_RUNNING');
    }
    const left = () => Math.max(1, deadline - Date.now());
    const checks: Record<Condition, () => Promise<boolean>> = {
      log: () => logMatches(deps, ref, logFrom, pattern!),
      port: () => deps.listensOn(ref, spec.port!),
      http: () => httpAnswers(deps, ref, spec.http!, left()),
      healthy: () => Promise.resolve(rec.state.health.status === 'healthy'),
      exec: () => beforeDeadline(deps.exec(ref, spec.exec!), left()).then((r) => r?.exitCode === 0),
    };
    for (const k of [...pending]) {
      // A check that fails (the container stopping under it, a command not found) is not met yet.
      if (await checks[k]().catch(() => false)) pending.delete(k);
    }
    if (pending.size === 0) return;
    if (Date.now() >= deadline) {
      const what = `container ${labelOf(rec)} not ready after ${timeout} ms: waiting for ${describe(spec, pending)}`;
      throw new TimeoutError(await withLastLines(deps, ref, what));
    }
    await sleep(Math.min(POLL_MS, left()), undefined, signal ? { signal } : {});
  }
}

function toMatcher(p: RegExp | string): (text: string) => boolean {
  if (typeof p === 'string') return (text) => text.includes(p);
  const re = new RegExp(p.source, p.flags.replace(/[gy]/g, '')); // no lastIndex carried between lines
  return (text) => re.test(text);
}

function hasHealthcheck(rec: ContainerRecord): boolean {
  const test = rec.config.healthcheck?.test;
  return test !== undefined && test.length > 0 && test[0] !== 'NONE';
}

/** The conditions still pending, as words. */
function describe(spec: WaitForOptions, pending: ReadonlySet<Condition>): string {
  const words: Record<Condition, () => string> = {
    log: () => `a log line matching ${String(spec.log)}`,
    port: () => `port ${spec.port} to listen`,
    http: () => `HTTP GET ${spec.http!.path ?? '/'} on port ${spec.http!.port}`,
    healthy: () => 'healthy',
    exec: () => `${JSON.stringify(spec.exec)} to exit 0`,
  };
  return [...pending].map((k) => words[k]()).join(', ');
}

/**
 * Whether a line of the log at or after `from.since` matches; moves `from.since` to the last line
 * read, so that each round reads only what is new (lines of that same millisecond again).
 */
async function logMatches(
  deps: WaitForDeps,
  ref: string,
  from: { since: number },
  match: (t: string) => boolean,
): Promise<boolean> {
  for await (const line of deps.logLines(ref, { since: from.since })) {
    if (match(line.text.replace(/\n$/, ''))) return true;
    from.since = line.time.getTime();
  }
  return false;
}

/** `message`, then the container's last log lines. */
async function withLastLines(deps: WaitForDeps, ref: string, message: string): Promise<string> {
  const lines: string[] = [];
  try {
    for await (const l of deps.logLines(ref, { tail: LAST_LINES }))
      lines.push(`  ${l.stream}: ${l.text.replace(/\n$/, '')}`);
  } catch (e) {
    lines.push(`  (its log could not be read: ${(e as Error).message})`);
  }
  return `${message}\nlast ${LAST_LINES} log lines:\n${lines.length ? lines.join('\n') : '  (none)'}`;
}

/** `p`'s value, or undefined when `ms` pass first (`p` then goes on alone). */
async function beforeDeadline<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  const ac = new AbortController();
  try {
    return await Promise.race([p, sleep(ms, undefined, { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
}

/** Whether `GET path` on the container's loopback answers the expected status (a refused or failed request: not yet). */
async function httpAnswers(
  deps: WaitForDeps,
  ref: string,
  http: NonNullable<WaitForOptions['http']>,
  ms: number,
): Promise<boolean> {
  let socket: Socket;
  try {
    socket = await deps.connect(ref, http.port, { timeout: ms });
  } catch {
    return false; // not listening yet
  }
  const status = await new Promise<number | undefined>((resolve) => {
    const req = request(
      {
        createConnection: () => socket,
        path: http.path ?? '/',
        headers: { host: 'localhost', connection: 'close' },
        timeout: ms,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode);
        req.destroy();
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
  socket.destroy();
  if (status === undefined) return false;
  return http.status === undefined ? status >= 200 && status < 400 : status === http.status;
}
