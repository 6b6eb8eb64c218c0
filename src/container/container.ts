/**
 * The public `Container` handle.
 *
 * @module
 */
import { z } from 'zod';
import { Engine, engineOption } from '../engine.js';
import { InvalidArgumentError } from '../errors.js';
import { parseOptions, parseSignal, resourcesSchema } from './options.js';
import { toInfo, toSummary, type ContainerInfo, type ContainerSummary } from './info.js';
import { linesToText, type LogLine, type LogsOptions } from './logs.js';
import type { ExecResult, WaitCondition } from './service.js';
import { ContainerAttachment, ContainerProcess } from './process.js';
import type { ResourceOptions } from '../runtime/cgroups/index.js';
import { attachCleanupErrors } from '../errors.js';
import {
  attachSchema,
  commitSchema,
  execSchema,
  listSchema,
  logsSchema,
  NAME_RE,
  spawnSchema,
  toExecOptions,
  toList,
  type ContainerAttachOptions,
  type ContainerCommitOptions,
  type ContainerExecOptions,
  type ContainerListOptions,
  type ContainerLogs,
  type ContainerSpawnOptions,
  type ContainerStats,
  type CreateOptions,
  type EngineOption,
  type RunOptions,
  type WaitResult,
} from './handle-options.js';
import { Readable } from 'node:stream';
import { Image } from '../image/image.js';
import type { ContainerChange } from './fs/union.js';

export type {
  ContainerAttachOptions,
  ContainerCommitOptions,
  ContainerExecOptions,
  ContainerListOptions,
  ContainerLogs,
  ContainerSpawnOptions,
  ContainerStats,
  CreateOptions,
  EngineOption,
  RunOptions,
  WaitResult,
} from './handle-options.js';

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
  static async create(options: CreateOptions): Promise<Container> {
    const engine = engineOption(options);
    const { engine: _engine, ...rest } = options ?? ({} as CreateOptions);
    const rec = await (engine ?? Engine.default()).containers.create(rest);
    return new Container(rec.id, engine ? { engine } : {});
  }

  /**
   * Creates and starts a container, as `docker run`; resolves once its program runs. The
   * container belongs to this process unless `detach: true` (`docker run -d`).
   */
  static async run(image: string, command?: string | string[], options: RunOptions = {}): Promise<Container> {
    const c = await Container.create({ ...options, image, ...(command !== undefined ? { command } : {}) });
    try {
      await c.start();
    } catch (e) {
      await c.remove({ force: true }).catch((removal: unknown) => {
        // Removed already (an auto-removed container) is what was wanted.
        if ((removal as { code?: string }).code !== 'CONTAINER_NOT_FOUND') attachCleanupErrors(e, [removal]);
      });
      throw e;
    }
    return c;
  }

  /** Lists containers, newest first (running ones only unless `all`), as `docker ps`. */
  static async list(options: ContainerListOptions = {}): Promise<ContainerSummary[]> {
    const o = parseOptions(listSchema, options);
    const engine = engineOption(options) ?? Engine.default();
    const recs = await engine.containers.list({
      ...(o.all !== undefined ? { all: o.all } : {}),
      label: toList(o.label),
      name: toList(o.name),
      status: toList(o.status),
    });
    return recs.map((r) => toSummary(r));
  }

  /** Removes every stopped container, as `docker container prune`. Returns the removed ids. */
  static async prune(options: EngineOption = {}): Promise<string[]> {
    const svc = (engineOption(options) ?? Engine.default()).containers;
    const removed: string[] = [];
    for (const r of await svc.list({ status: ['exited', 'created', 'dead'] })) {
      await svc.remove(r.id).then(
        () => removed.push(r.id),
        () => undefined,
      );
    }
    return removed;
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
   */
  async start(): Promise<this> {
    await this.#svc.start(this.ref);
    return this;
  }

  /**
   * Waits until the container is not running (default), until its next exit (`next-exit`, also
   * for a container not started yet), or until it is removed (`removed`), as
   * `docker wait --condition`; resolves with its exit code.
   */
  async wait(options: { condition?: WaitCondition } = {}): Promise<WaitResult> {
    const o = parseOptions(
      z.strictObject({ condition: z.enum(['not-running', 'next-exit', 'removed']).optional() }),
      options,
    );
    const { exitCode } = await this.#svc.wait(this.ref, undefined, o.condition ?? 'not-running');
    return { exitCode };
  }

  /**
   * Runs a command in the running container (`docker exec`): in its namespaces and root, with
   * its capabilities. Resolves with the exit code and the output; a non-zero exit code does not
   * throw. A command that cannot be executed throws `COMMAND_NOT_FOUND`.
   *
   * @example
   * ```ts
   * const { exitCode, stdout } = await c.exec(['cat', '/etc/hostname']);
   * ```
   */
  async exec(command: string[], options: ContainerExecOptions = {}): Promise<ExecResult> {
    const cmd = parseOptions(z.array(z.string()).min(1, 'expected a command'), command, 'command');
    const o = parseOptions(execSchema, options) as ContainerExecOptions;
    return this.#svc.exec(this.ref, cmd, { ...toExecOptions(o), stdin: false });
  }

  /**
   * Starts a command in the running container and returns a streaming handle at once
   * (`docker exec -i`, or `-it` with `tty: true`): `stdin`, `stdout`, `stderr`, `resize()`,
   * `kill()` and `exited`. Invalid options throw here; a failure to start (not running, command
   * not found) rejects `exited`.
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
    const svc = this.#svc;
    const ref = this.ref;
    return new ContainerProcess({
      start: (onOutput) => svc.startExec(ref, cmd, toExecOptions(o), onOutput),
      signal: (pid, startTime, signal) => svc.signalExec(pid, startTime, signal),
    });
  }

  /**
   * Connects to the running container's stdio (`docker attach`): its output from now on (all of
   * it with `logs: true`) until it stops, and its input when it was created with `stdin` or
   * `tty`. Typing `\x03` on a terminal interrupts its program, as Ctrl-C does. Works from any
   * process on the same root; `detach()` leaves the container running.
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
    return new ContainerAttachment(await this.#svc.attach(this.ref, o));
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
   * `docker stats`: cpu (ns), memory (bytes), pids, block I/O. Ends when it stops, or when its
   * engine closes.
   */
  async *stats(options: { interval?: number } = {}): AsyncGenerator<ContainerStats> {
    const o = parseOptions(z.strictObject({ interval: z.number().int().min(10).optional() }), options);
    for (;;) {
      if (this.#svc.closed) return;
      let s;
      try {
        s = await this.#svc.stats(this.ref);
      } catch (e) {
        if ((e as { code?: string }).code === 'NOT_RUNNING') return;
        throw e;
      }
      yield { ...s, time: new Date() };
      await new Promise((r) => setTimeout(r, o.interval ?? 1000));
    }
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
    const o = parseOptions(logsSchema, options) as LogsOptions;
    const svc = this.#svc;
    const ref = this.ref;
    const lines = () => svc.logLines(ref, o);
    return {
      [Symbol.asyncIterator]: () => lines(),
      then(onFulfilled, onRejected) {
        const all = (async () => {
          const out: LogLine[] = [];
          for await (const l of lines()) out.push(l);
          return linesToText(out, o.timestamps ?? false);
        })();
        return all.then(onFulfilled, onRejected);
      },
    };
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
   * Extracts the tar `tar` into the directory `path` inside it, as `docker cp - CONTAINER:path`.
   * The path is resolved inside the container's root (a symlink to a directory is followed
   * inside it); archive entries are never written through a symlink nor outside `path`.
   * Works on running and stopped containers.
   */
  async copyTo(path: string, tar: Readable | AsyncIterable<Uint8Array> | Uint8Array): Promise<void> {
    const p = parseOptions(z.string().startsWith('/', 'must be an absolute path'), path, 'path');
    if (
      !(tar instanceof Uint8Array) &&
      typeof (tar as AsyncIterable<Uint8Array>)?.[Symbol.asyncIterator] !== 'function'
    ) {
      throw new InvalidArgumentError('tar', 'expected a tar stream or the bytes of a tar');
    }
    await this.#svc.copyTo(this.ref, p, tar);
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
}

declare module '../image/image.js' {
  interface Image {
    /**
     * Creates and starts a container of this image, as `docker run` (shorthand for
     * {@link Container.run} with this image and its engine).
     *
     * @example
     * ```ts
     * await using c = await new Image('busybox').run(['sleep', '30']);
     * ```
     */
    run(command?: string | string[], options?: RunOptions): Promise<Container>;
  }
}

Image.prototype.run = function run(this: Image, command?: string | string[], options: RunOptions = {}) {
  return Container.run(this.ref, command, {
    ...(this.engine === undefined ? {} : { engine: this.engine }),
    ...options,
  });
};
