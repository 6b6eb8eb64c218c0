/**
 * The engine's side of the zygote: spawns it on first use, sends requests, matches replies and
 * fans out exit notices. The zygote and its IPC channel are unref'd while nothing is pending, so
 * an idle engine never keeps the user's process alive.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BerthError } from '../errors.js';
import { pidfdGetfd, pidfdOpen } from '../kernel/process.js';
import { close } from '../kernel/fd.js';
import { zygoteScript } from './zygote-script.js';
import { monitorBinary, nativeBinary } from './monitor-binary.js';
import type { ExitRecord, StartedReply, ZygoteMessage, ZygoteRequest } from './protocol.js';
import type { Plan } from './plan.js';
import type { LogLimits } from './log-writer.js';
import type { ExecPlan } from './init.js';
import type { InitFailure } from './init-report.js';

/**
 * The variables of the engine's environment the zygote is given: only what node itself may need
 * to start (the dynamic linker's search path, ICU data). Every container's JavaScript init and
 * forked exec is a copy of the zygote, its environment block included, so nothing else of the
 * user's process (its secrets, tokens, paths) is passed on. The zygote reads no variable itself:
 * the engine decides, and sends what it decided (the paths of berth's programs included) with each
 * request. A `BERTH_*` switch read inside the zygote would have to be listed here.
 */
export const ZYGOTE_ENV_KEYS: readonly string[] = ['LD_LIBRARY_PATH', 'NODE_ICU_DATA'];

/** The environment the zygote is spawned with: the {@link ZYGOTE_ENV_KEYS} that `env` sets. */
export function zygoteEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ZYGOTE_ENV_KEYS) {
    const value = env[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

type Pending = { resolve: (m: ZygoteMessage) => void; reject: (e: Error) => void };

/** Thrown when the init failed to start a process; carries the init's structured failure. */
export class StartFailure extends Error {
  /** The init's report. */
  readonly failure: InitFailure;

  /** Wraps `failure`. */
  constructor(failure: InitFailure) {
    super(failure.message);
    this.failure = failure;
  }
}

/** A handle on one zygote process. */
export class ZygoteClient {
  #child: ChildProcess | undefined;
  #ready: Promise<void> | undefined;
  #rid = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #exitListeners = new Set<(id: string, status: ExitRecord) => void>();
  #holds = 0;
  readonly #execs = new Map<
    string,
    { onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void; done: (s: ExitRecord) => void }
  >();

  /** Called with every exit notice from the zygote. Returns an unsubscribe function. */
  onExit(listener: (id: string, status: ExitRecord) => void): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  /** Starts the zygote if it is not running; resolves when it is ready for requests. */
  ready(): Promise<void> {
    this.#ready ??= this.#spawn();
    return this.#ready;
  }

  /** The zygote's pid, once started. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async #spawn(): Promise<void> {
    const script = await zygoteScript();
    const child = spawn(process.execPath, ['--single-threaded', '--expose-gc', '--no-flush-bytecode', script], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
      env: zygoteEnvironment(process.env),
    });
    this.#child = child;
    child.on('message', (m: ZygoteMessage) => this.#onMessage(m));
    child.on('exit', (code, signal) => {
      const err = new BerthError('INTERNAL', `berth zygote exited (${signal ?? code}); containers it ran were killed`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
      this.#child = undefined;
      this.#ready = undefined;
    });
    await new Promise<void>((resolve, reject) => {
      this.#pending.set(0, { resolve: () => resolve(), reject });
      child.once('error', reject);
    });
    this.#updateRef();
  }

  #onMessage(m: ZygoteMessage): void {
    if (m.t === 'exit') {
      for (const l of this.#exitListeners) l(m.id, m.status);
      return;
    }
    if (m.t === 'output') {
      this.#execs.get(m.id)?.onOutput(m.stream, Buffer.from(m.data, 'base64'));
      return;
    }
    if (m.t === 'execExit') {
      const e = this.#execs.get(m.id);
      this.#execs.delete(m.id);
      e?.done(m.status);
      return;
    }
    if (!('rid' in m)) return;
    const p = this.#pending.get(m.rid);
    if (!p) return;
    this.#pending.delete(m.rid);
    this.#updateRef();
    p.resolve(m);
  }

  /** Keeps the process alive only while a request is pending. */
  #updateRef(): void {
    const c = this.#child;
    if (!c) return;
    const channel = (c as unknown as { channel?: { ref(): void; unref(): void } }).channel;
    if (this.#pending.size > 0 || this.#holds > 0) {
      c.ref();
      channel?.ref();
    } else {
      c.unref();
      channel?.unref();
    }
  }

  async #request(
    req: ZygoteRequest extends infer R ? (R extends unknown ? Omit<R, 'rid'> : never) : never,
  ): Promise<ZygoteMessage> {
    await this.ready();
    const child = this.#child;
    if (!child) throw new BerthError('INTERNAL', 'berth zygote is not running');
    const rid = this.#rid++;
    const reply = new Promise<ZygoteMessage>((resolve, reject) => this.#pending.set(rid, { resolve, reject }));
    this.#updateRef();
    child.send({ ...req, rid } as ZygoteRequest);
    return reply;
  }

  /**
   * Starts a container process; resolves once execve succeeded. Throws {@link StartFailure} when
   * the init failed. `stdinFd`: the read end of a pipe in this process that becomes its stdin
   * (with `plan.spec.process.stdin`; kept open by the caller until this resolves or rejects).
   */
  async start(
    plan: Plan,
    logPath: string,
    exitPath: string,
    options: { detach?: boolean; cgroups?: Promise<unknown>; log?: LogLimits; timeout?: number; stdinFd?: number } = {},
  ): Promise<StartedReply> {
    const detach = options.detach
      ? { monitor: await monitorBinary(), ...(options.timeout ? { timeout: options.timeout } : {}) }
      : undefined;
    const init = await this.#initHelper();
    if (plan.spec.userns && !init) {
      throw new BerthError(
        'UNSUPPORTED',
        'userns needs berth-init, the native init (a C compiler to build it from sources, and not BERTH_NATIVE_INIT=0); ' +
          'the JavaScript init does not make user namespaces',
      );
    }
    const pending = this.#request({
      t: 'start',
      plan,
      logPath,
      exitPath,
      ...(options.log ? { log: options.log } : {}),
      ...(detach ? { detach } : {}),
      ...(options.cgroups ? { cgroupsPending: true } : {}),
      ...(init ? { init } : {}),
      ...(options.stdinFd !== undefined ? { stdinFd: options.stdinFd } : {}),
    });
    // Awaited below; a rejection meanwhile (the zygote died) must not count as unhandled.
    pending.catch(() => undefined);
    if (options.cgroups) {
      // The init makes its mounts while the cgroups are made; it is let in once they are.
      const ok = await options.cgroups.then(
        () => true,
        () => false,
      );
      // The zygote died: `pending` below fails with that.
      void this.#request({ t: 'cgroups', id: plan.spec.id, ok }).catch(() => undefined);
    }
    const reply = await pending;
    if (reply.t === 'failed') throw new StartFailure(reply.error);
    if (reply.t !== 'started') throw new BerthError('INTERNAL', `unexpected zygote reply ${reply.t}`);
    return reply;
  }

  /**
   * Runs a process in a running container. Resolves once it runs, with a promise of its exit;
   * `onOutput` receives its output as it comes. Throws {@link StartFailure} when it cannot run.
   * `stdinFd`: the read end of a pipe in this process that becomes its stdin. With a terminal
   * (`plan.process.terminal`), `tty` is this process's own copy of the terminal's master (the
   * caller closes it), for input and resizing; its output arrives through `onOutput`.
   */
  async exec(
    plan: ExecPlan,
    onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void,
    options: { stdinFd?: number } = {},
  ): Promise<{ pid: number; startTime: number; exited: Promise<ExitRecord>; tty?: number }> {
    const release = this.hold();
    let resolveExit!: (s: ExitRecord) => void;
    const exited = new Promise<ExitRecord>((r) => (resolveExit = r));
    this.#execs.set(plan.id, {
      onOutput,
      done: (s) => {
        release();
        resolveExit(s);
      },
    });
    try {
      const helper = await this.#execHelper();
      const reply = await this.#request({
        t: 'exec',
        plan,
        ...(options.stdinFd !== undefined ? { stdinFd: options.stdinFd } : {}),
        ...(helper ? { helper } : {}),
      });
      if (reply.t === 'failed') throw new StartFailure(reply.error);
      if (reply.t !== 'started') throw new BerthError('INTERNAL', `unexpected zygote reply ${reply.t}`);
      // The zygote keeps the master, however soon the exec ends, until told it was copied.
      let tty: number | undefined;
      if (reply.ttyFd !== undefined) {
        try {
          tty = this.copyFd(reply.ttyFd);
        } finally {
          // The zygote died: the exec's end is reported through its exit, not here.
          void this.#request({ t: 'ttyCopied', id: plan.id }).catch(() => undefined);
        }
      }
      return { pid: reply.pid, startTime: reply.startTime, exited, ...(tty !== undefined ? { tty } : {}) };
    } catch (e) {
      // A failed exec still reports its end (execExit), which releases the hold.
      if (!(e instanceof StartFailure)) {
        this.#execs.delete(plan.id);
        release();
      }
      throw e;
    }
  }

  /**
   * Keeps the user's process alive (the zygote's channel referenced) until the returned
   * function is called: used while someone waits for a container to exit.
   */
  hold(): () => void {
    this.#holds++;
    this.#updateRef();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      this.#updateRef();
    };
  }

  #helper: Promise<string | undefined> | undefined;

  /**
   * `berth-exec`, which starts execs without forking the zygote (see `monitor/exec.c`); without
   * it (no C compiler to build it from sources, or `BERTH_NATIVE_EXEC=0`) execs are forks of the
   * zygote running `runExec`, which behave the same and cost ~3 ms more.
   */
  #execHelper(): Promise<string | undefined> {
    this.#helper ??=
      // No berth-exec (no compiler, as documented): the forked exec runs instead.
      process.env.BERTH_NATIVE_EXEC === '0' ? Promise.resolve(undefined) : nativeBinary('exec').catch(() => undefined);
    return this.#helper;
  }

  #init: Promise<string | undefined> | undefined;

  /**
   * `berth-init`, the container init the zygote starts with posix_spawn (see `monitor/init.c`);
   * without it (no C compiler to build it from sources, or `BERTH_NATIVE_INIT=0`) every start is a
   * fork of the zygote running `runInit`, which behaves the same and costs more CPU.
   */
  #initHelper(): Promise<string | undefined> {
    this.#init ??=
      // No berth-init (no compiler): the JavaScript init runs instead.
      process.env.BERTH_NATIVE_INIT === '0' ? Promise.resolve(undefined) : nativeBinary('init').catch(() => undefined);
    return this.#init;
  }

  /** A copy, in this process, of the zygote's fd `fd` (pidfd_getfd). */
  copyFd(fd: number): number {
    const pid = this.#child?.pid;
    if (!pid) throw new BerthError('INTERNAL', 'berth zygote is not running');
    const pidfd = pidfdOpen(pid);
    try {
      return pidfdGetfd(pidfd, fd);
    } finally {
      close(pidfd);
    }
  }

  /** Settles the zygote for a memory measurement: its pool of prepared templates full, then a full garbage collection. */
  async collectGarbage(): Promise<void> {
    await this.#request({ t: 'gc' });
  }

  /** Stops the zygote; every container it started is killed with it. */
  close(): void {
    this.#child?.kill('SIGKILL');
  }
}
