/**
 * The public `Container` handle.
 *
 * @module
 */
import { z } from 'zod';
import { Engine, engineOption } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import { listContainers, pruneStopped, readLogs, sampleStats, waitUntil } from './handle-calls.js';
import { parseOptions, parseSignal, resourcesSchema } from './options.js';
import { toInfo, type ContainerInfo, type ContainerSummary } from './info.js';
import type { LogsOptions } from './logs.js';
import type { ExecResult, WaitCondition } from './service.js';
import { ContainerAttachment, ContainerProcess } from './process.js';
import type { ResourceOptions } from '../runtime/cgroups/index.js';
import {
  attachSchema,
  commitSchema,
  connectSchema,
  execRunSchema,
  startSchema,
  listSchema,
  logsSchema,
  NAME_RE,
  spawnSchema,
  toExecOptions,
  toList,
  type ContainerAttachOptions,
  type ContainerCommitOptions,
  type ContainerConnectOptions,
  type ContainerExecRunOptions,
  type ContainerListOptions,
  type ContainerLogs,
  type ContainerSpawnOptions,
  type ContainerStartOptions,
  type ContainerStats,
  type CreateOptions,
  type EngineOption,
  type RunOptions,
  type WaitResult,
} from './handle-options.js';
import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { Image } from '../image/image.js';
import type { ContainerChange } from './fs/union.js';
import { copyIntoContainer, type ContainerFiles } from './fs/files.js';
import * as published from './published.js';
import { getOrCreate, reuseOptionsSchema, type ReuseOptions, type ReuseSpec } from './reuse.js';
import { Snapshot, type SnapshotCreateOptions, type SnapshotOptions } from './snapshot.js';
import { spawnStarter, startWithin } from './call-limits.js';
import { attachSource, parseInput } from './start-io.js';
import { createContainer, runContainer } from './handle-run.js';
import type { ContainerPool } from './pool.js';
import { openPool, type ContainerPoolOptions } from './pool-open.js';

/**
 * A container, by id, unique id prefix or name. The constructor touches nothing; each method
 * looks the container up.
 *
 * @example
 * ```ts
 * import { Container } from 'berth';
 * await using c = await Container.run('busybox', ['sh', '-c', 'echo hi']);
 * const { exitCode } = await c.wait();
 * console.log(exitCode, await c.logs()); // 0 'hi\n'
 * ```
 */
export class Container {
  /** The reference this handle was made with (after create or run: the full id). */
  readonly ref: string;
  readonly #engine: Engine | undefined;

  /** A handle on the container `idOrName`; touches nothing until a method is called. */
  constructor(idOrName: string, options: EngineOption = {}) {
    if (typeof idOrName !== 'string' || !idOrName)
      throw new InvalidArgumentError('idOrName', 'expected a container id or name');
    this.ref = idOrName;
    this.#engine = engineOption(options);
  }

  get #svc() {
    return (this.#engine ?? Engine.default()).containers;
  }

  /** Creates a container from a local image (does not start it), as `docker create`. */
  static async create(options: CreateOptions | SnapshotCreateOptions): Promise<Container> {
    const { id, engine } = await createContainer(options);
    return new Container(id, engine ? { engine } : {});
  }

  /**
   * Creates and starts a container, as `docker run`; resolves once its program runs. The
   * container belongs to this process unless `detach: true` (`docker run -d`). With `waitFor`
   * (see {@link Container.start}), resolves once it is ready; when it is not, the container is
   * removed and the error (`TIMEOUT`, `NOT_RUNNING`) carries its last log lines. `signal` bounds
   * the whole call (pull if missing, create, start, `waitFor`): `ABORTED`, and the container is
   * removed (none is made when it fired already). `timeout` here is the container's run time
   * limit (a create option); bound the wait with `waitFor.timeout`. With `input`, the program
   * reads exactly it on its stdin, then end of file (see {@link ContainerStartOptions.input}).
   *
   * @example
   * ```ts
   * await using c = await Container.run('busybox', ['sh', '-c', 'echo ready; exec nc -l -p 8080'], {
   *   waitFor: { log: 'ready', port: 8080 },
   * });
   * ```
   */
  static async run(
    image: string | Snapshot,
    command?: string | string[],
    options: RunOptions = {},
  ): Promise<Container> {
    const { id, engine } = await runContainer(image, command, options);
    return new Container(id, engine ? { engine } : {});
  }

  /** Lists containers, newest first (running ones only unless `all`), as `docker ps`. */
  static async list(options: ContainerListOptions = {}): Promise<ContainerSummary[]> {
    const o = parseOptions(listSchema, options);
    const svc = (engineOption(options) ?? Engine.default()).containers;
    return listContainers(svc, { ...o, label: toList(o.label), name: toList(o.name), status: toList(o.status) });
  }

  /** Removes every stopped container, as `docker container prune`. Returns the removed ids. */
  static async prune(options: EngineOption = {}): Promise<string[]> {
    return pruneStopped((engineOption(options) ?? Engine.default()).containers);
  }

  /** The full id (looks the container up). */
  async id(): Promise<string> {
    return (await this.#svc.get(this.ref)).id;
  }

  /**
   * Starts the container; resolves once its program was found and is being executed (as runc's
   * start returns before its init's execve). Throws `COMMAND_NOT_FOUND` when the program is
   * missing or not executable; a program the kernel still refuses (a bad binary format) ends
   * the container at once with exit code 126 and the reason in `inspect().state.error`.
   *
   * With `waitFor`, resolves only once every condition given holds (see {@link WaitForOptions});
   * when its timeout passes or the container stops first, rejects with `TIMEOUT` or `NOT_RUNNING`
   * and the container's last 20 log lines in the message, leaving the container as it is
   * ({@link Container.run} removes it). `signal` and `timeout` (ms) reject with `ABORTED` or
   * `TIMEOUT` and leave the container stopped (killed, its cgroup and mounts released; one already
   * running before the call stays running); an already-fired signal starts nothing.
   *
   * @example
   * ```ts
   * await c.start({ waitFor: { log: /ready/, port: 8080, timeout: 10_000 } });
   * ```
   */
  async start(options: ContainerStartOptions = {}): Promise<this> {
    const { input, ...rest } = options ?? {};
    await startWithin(this.#svc, this.ref, { ...parseOptions(startSchema, rest), input: parseInput(input) });
    return this;
  }

  /**
   * Waits until the container is not running (default), until its next exit (`next-exit`, also
   * for a container not started yet), or until it is removed (`removed`), as
   * `docker wait --condition`; resolves with its exit code. With `timeout` (ms) or `signal`, stops
   * waiting with `TIMEOUT` or `ABORTED`; the container is left as it is.
   */
  async wait(options: { condition?: WaitCondition; signal?: AbortSignal; timeout?: number } = {}): Promise<WaitResult> {
    return waitUntil(this.#svc, this.ref, options);
  }

  /**
   * Runs a command in the running container (`docker exec`): in its namespaces and root, with
   * its capabilities. Resolves with the exit code and the output; a non-zero exit code does not
   * throw. A command that cannot be executed throws `COMMAND_NOT_FOUND`. `input` is written to
   * its stdin; `maxOutput` bounds what is kept of each stream (for untrusted programs), and the
   * result's `truncated` then says which stream was cut.
   *
   * @example
   * ```ts
   * const { exitCode, stdout } = await c.exec(['cat', '/etc/hostname']);
   * const r = await c.exec(['sh', '-c', 'python3 -'], { input: code, maxOutput: 64 * 1024 });
   * if (r.truncated?.stdout) console.log('output cut at 64 KiB');
   * ```
   */
  async exec(command: string[], options: ContainerExecRunOptions = {}): Promise<ExecResult> {
    const cmd = parseOptions(z.array(z.string()).min(1, 'expected a command'), command, 'command');
    const { input: rawInput, ...rest } = options ?? {};
    const [o, input] = [parseOptions(execRunSchema, rest) as ContainerExecRunOptions, parseInput(rawInput)];
    return this.#svc.exec(this.ref, cmd, {
      ...toExecOptions(o),
      stdin: false,
      ...(input === undefined ? {} : { input }),
      ...(o.maxOutput === undefined ? {} : { maxOutput: o.maxOutput }),
      ...(o.keep === undefined ? {} : { keep: o.keep }),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      ...(o.timeout === undefined ? {} : { timeout: o.timeout }),
    });
  }

  /**
   * Starts a command in the running container and returns a streaming handle at once
   * (`docker exec -i`, or `-it` with `tty: true`): `stdin`, `stdout`, `stderr`, `resize()`,
   * `kill()` and `exited`. Invalid options throw here; a failure to start (not running, command
   * not found) rejects `exited`. When `signal` fires or `timeout` ms pass, the process is killed
   * (SIGKILL) and `exited` rejects with `ABORTED` or `TIMEOUT`, as {@link Container.exec} does.
   *
   * @example
   * ```ts
   * const sh = c.spawn(['sh'], { tty: true });
   * sh.stdout.on('data', (d) => process.stdout.write(d));
   * sh.stdin.write('ls /\n');
   * await sh.resize(120, 40);
   * sh.stdin.write('exit\n');
   * await sh.exited;
   * ```
   */
  spawn(command: string[], options: ContainerSpawnOptions = {}): ContainerProcess {
    const cmd = parseOptions(z.array(z.string()).min(1, 'expected a command'), command, 'command');
    const o = parseOptions(spawnSchema, options) as ContainerSpawnOptions;
    return new ContainerProcess(spawnStarter(this.#svc, this.ref, cmd, toExecOptions(o), o));
  }

  /**
   * Connects to the running container's stdio (`docker attach`): its output from now on (all of
   * it with `logs: true`) until it stops, and its input when it was created with `stdin` or
   * `tty`. Typing `\x03` on a terminal interrupts its program, as Ctrl-C does. Works from any
   * process on the same root; `detach()` leaves the container running. On a created container
   * it waits for this process's start (`docker start -a -i`), see {@link ContainerAttachment}.
   *
   * @example
   * ```ts
   * const c = await Container.run('busybox', ['sh'], { tty: true });
   * const a = await c.attach();
   * a.stdout.on('data', (d) => process.stdout.write(d));
   * a.stdin!.write('echo hello\n');
   * await a.detach();
   * ```
   */
  async attach(options: ContainerAttachOptions = {}): Promise<ContainerAttachment> {
    const o = parseOptions(attachSchema, options);
    return new ContainerAttachment(await attachSource(this.#svc, this.ref, o));
  }

  /** The host port a container port is published on (`docker port`); undefined when it is not published. */
  async port(containerPort: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<number | undefined> {
    const rec = await this.#svc.get(this.ref);
    const s = await this.#svc.networkSettings(rec.id);
    return s.ports.find((p) => p.containerPort === containerPort && p.protocol === protocol)?.hostPort;
  }

  /** Freezes all its processes (cgroup freezer), as `docker pause`. */
  async pause(): Promise<void> {
    await this.#svc.pause(this.ref);
  }

  /** Thaws it, as `docker unpause`. */
  async unpause(): Promise<void> {
    await this.#svc.unpause(this.ref);
  }

  /** Changes its limits, live when it runs, as `docker update`. */
  async update(options: { resources: ResourceOptions }): Promise<void> {
    const o = parseOptions(z.strictObject({ resources: resourcesSchema }), options);
    await this.#svc.update(this.ref, o.resources);
  }

  /**
   * Its resource figures, sampled every `interval` ms (default 1000) while it runs, as
   * `docker stats`: cpu (ns), memory (bytes), pids, block I/O. Ends when it stops or its engine
   * closes; `signal` or `timeout` (ms) end it earlier with `ABORTED` or `TIMEOUT`.
   */
  stats(options: { interval?: number; signal?: AbortSignal; timeout?: number } = {}): AsyncGenerator<ContainerStats> {
    return sampleStats(this.#svc, this.ref, options);
  }

  /** Its processes (host pids and command lines), as `docker top`. */
  async top(): Promise<Array<{ pid: number; command: string }>> {
    return this.#svc.top(this.ref);
  }

  /** Stops it: its stop signal, then SIGKILL after `timeout` seconds (default: its stopTimeout, 10). */
  async stop(options: { timeout?: number } = {}): Promise<void> {
    const o = parseOptions(z.strictObject({ timeout: z.number().int().min(-1).optional() }), options);
    await this.#svc.stop(this.ref, o.timeout);
  }

  /** Stops it (as {@link Container.stop}) and starts it again, as `docker restart`. */
  async restart(options: { timeout?: number } = {}): Promise<void> {
    await this.stop(options);
    await this.start();
  }

  /** Sends a signal (default SIGKILL, as `docker kill`) to its PID 1. */
  async kill(signal: string | number = 'SIGKILL'): Promise<void> {
    const n = parseSignal(signal);
    if (n === undefined) throw new InvalidArgumentError('signal', `unknown signal ${String(signal)}`);
    await this.#svc.kill(this.ref, n);
  }

  /** Removes it; a running container is refused unless `force`. `volumes` also removes its anonymous volumes. */
  async remove(options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const o = parseOptions(z.strictObject({ force: z.boolean().optional(), volumes: z.boolean().optional() }), options);
    await this.#svc.remove(this.ref, o);
  }

  /** Its full state and configuration. */
  async inspect(): Promise<ContainerInfo> {
    const rec = await this.#svc.get(this.ref);
    return toInfo(rec, this.#svc.paths(rec.id).log, await this.#svc.networkSettings(rec.id));
  }

  /**
   * Its output. `await c.logs()` gives stdout and stderr as text, in order;
   * `for await (const line of c.logs({ follow: true }))` gives `{ stream, text, time }` lines
   * and ends when the container stops or its engine closes.
   */
  logs(options: LogsOptions = {}): ContainerLogs {
    return readLogs(this.#svc, this.ref, parseOptions(logsSchema, options) as LogsOptions);
  }

  /**
   * The changes of its file system against its image, as `docker diff`: `A` added, `C` changed
   * (also the directories above a change), `D` deleted; sorted by path.
   */
  async diff(): Promise<ContainerChange[]> {
    return this.#svc.diff(this.ref);
  }

  /**
   * Its whole file system as a tar stream, as `docker export` (running or stopped; volumes and
   * other mounts are not included). Errors (such as a missing container) surface on the stream.
   */
  export(): Readable {
    return this.#svc.export(this.ref);
  }

  /**
   * A tar of `path` inside it, as `docker cp CONTAINER:path -`: a file or a directory tree under
   * its base name. The path is resolved inside the container's root; symlinks never lead out of
   * it. Works on running and stopped containers. Errors surface on the stream.
   *
   * @example
   * ```ts
   * const tar = c.copyFrom('/etc/hostname');
   * ```
   */
  copyFrom(path: string): Readable {
    const p = parseOptions(z.string().startsWith('/', 'must be an absolute path'), path, 'path');
    return this.#svc.copyFrom(this.ref, p);
  }

  /**
   * Writes files into it (running or stopped): absolute container paths to contents (mode 0644)
   * or `{ source }`, a host file or directory. Missing parents are made (0755); existing ones are
   * resolved inside its root (a symlink never leads out of it).
   *
   * @example
   * ```ts
   * await c.copyTo({ '/app/config.json': JSON.stringify({ debug: true }), '/app/static': { source: './static' } });
   * ```
   */
  copyTo(files: ContainerFiles): Promise<void>;
  /**
   * Extracts the tar `tar` into the directory `path` inside it, as `docker cp - CONTAINER:path`.
   * The path is resolved inside the container's root (a symlink to a directory is followed
   * inside it); archive entries are never written through a symlink nor outside `path`.
   * Works on running and stopped containers.
   */
  copyTo(path: string, tar: Readable | AsyncIterable<Uint8Array> | Uint8Array): Promise<void>;
  async copyTo(
    pathOrFiles: string | ContainerFiles,
    tar?: Readable | AsyncIterable<Uint8Array> | Uint8Array,
  ): Promise<void> {
    return copyIntoContainer(this.#svc, this.ref, pathOrFiles, tar);
  }

  /** Renames it, as `docker rename`. Throws `NAME_CONFLICT` when the name is taken. */
  async rename(newName: string): Promise<void> {
    const n = parseOptions(
      z.string().regex(NAME_RE, 'only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed').max(253),
      newName,
      'newName',
    );
    await this.#svc.rename(this.ref, n);
  }

  /**
   * Makes an image of it, as `docker commit`: its changes become a new layer over its image, and
   * its command, entrypoint, environment, working directory, user and labels become the image's,
   * then `changes` apply.
   *
   * @example
   * ```ts
   * const img = await c.commit({ ref: 'app:snapshot', changes: ['CMD ["sh"]'] });
   * ```
   */
  async commit(options: ContainerCommitOptions = {}): Promise<Image> {
    const o = parseOptions(commitSchema, options);
    const changes = o.changes === undefined ? [] : Array.isArray(o.changes) ? o.changes : [o.changes];
    const { id } = await this.#svc.commit(this.ref, { ...o, changes });
    return new Image(o.ref ?? id, this.#engine ? { engine: this.#engine } : {});
  }

  /** Force-removes the container (for `await using`); a container already gone is fine. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove({ force: true, volumes: true }).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'CONTAINER_NOT_FOUND') throw e;
    });
  }

  /**
   * A TCP connection to port `port` of `127.0.0.1` inside the container's network namespace: no
   * published port and no host address, so nothing but this process can reach it. A container on
   * the `host` network reaches the host's loopback; one on `none` its own. The socket is the
   * caller's to end.
   *
   * @throws StateError `NOT_RUNNING` when the container does not run; KernelError
   * (`errnoCode: 'ECONNREFUSED'`, the message naming the address) when nothing listens there.
   *
   * @example
   * ```ts
   * await using c = await Container.run('redis', [], { network: 'none' });
   * const socket = await c.connect(6379);
   * socket.end('PING\r\n');
   * ```
   */
  async connect(port: number, options: ContainerConnectOptions = {}): Promise<Socket> {
    const { port: p, ...o } = parseOptions(connectSchema, { ...options, port });
    return this.#svc.connect(this.ref, p, o);
  }

  /**
   * The host address its published port `containerPort` (default: its first) is reached on,
   * `127.0.0.1` for a binding on every address. Throws `NOT_FOUND` naming a port not published.
   * E.g. `net.connect(await c.port(5432), await c.host(5432))`.
   */
  async host(containerPort?: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<string> {
    return published.hostOf(this.#svc, this.ref, containerPort, protocol);
  }

  /**
   * The URL of its published TCP port `containerPort`: `http://127.0.0.1:<host port>/` by
   * default. Throws `NOT_FOUND` naming the port when it is not published.
   *
   * @example
   * ```ts
   * const res = await fetch(await c.url(80, { path: '/health' }));
   * ```
   */
  async url(containerPort: number, options: published.PublishedUrlOptions = {}): Promise<string> {
    return published.urlOf(this.#svc, this.ref, containerPort, options);
  }

  /**
   * The container named `spec.name` if made from the same spec (started again when stopped),
   * else a new one, created and started (detached unless `detach: false`); atomic across the
   * processes sharing the root. The spec's hash is the label `berth.spec-hash`; a container of
   * that name made from another spec is never replaced: `NAME_CONFLICT` naming both hashes.
   *
   * @example
   * ```ts
   * const db = await Container.getOrCreate({ name: 'test-db', image: 'postgres:16', ports: ['5432'] });
   * ```
   */
  static async getOrCreate(spec: CreateOptions & { name: string }, options: ReuseOptions = {}): Promise<Container> {
    const [engine, o] = [engineOption(spec), parseOptions(reuseOptionsSchema, options) as ReuseOptions];
    const { engine: _engine, ...rest } = spec ?? ({} as ReuseSpec);
    const { record } = await getOrCreate((engine ?? Engine.default()).containers, rest, o);
    return new Container(record.id, engine ? { engine } : {});
  }

  /**
   * Freezes its file system as a {@link Snapshot} (pausing it for the copy when it runs, as
   * {@link Container.pause} does), from which `Container.run(snapshot, …)` and `snapshot.fork()`
   * start containers in O(1) of its size. Its volumes are not part of it.
   *
   * @throws NotFoundError (`CONTAINER_NOT_FOUND`); InvalidArgumentError naming `labels`.
   */
  async snapshot(options: SnapshotOptions = {}): Promise<Snapshot> {
    return Snapshot.take(this.ref, options, this.#engine);
  }

  /**
   * A pool of started containers of `spec` (`size` kept idle, default 4) shared by the processes
   * on the root opening the same spec and `name`; resolves once `size` are idle. See
   * {@link ContainerPool}. The engine is `options.engine`, else `spec.engine`. With `waitFor`, a
   * member is handed out only once ready.
   *
   * @example
   * ```ts
   * await using pool = await Container.pool({ image: 'busybox', command: ['sleep', 'infinity'] }, { size: 4 });
   * await using c = await pool.take();
   * ```
   */
  static async pool(spec: CreateOptions, options: ContainerPoolOptions = {}): Promise<ContainerPool<Container>> {
    return openPool(spec, options, (id, engine) => new Container(id, { engine }));
  }
}
