/**
 * Streaming handles on processes in containers: {@link ContainerProcess} (from
 * `container.spawn()`, like `docker exec -i[t]`) and {@link ContainerAttachment} (from
 * `container.attach()`, like `docker attach`).
 *
 * @module
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { closeFd as close, dup, setWindowSize, SIGNALS } from '../runtime/host.js';
import { InvalidArgumentError, StateError } from '../errors.js';
import { FdWritable } from './stdio.js';
import type { StartedExec } from './service.js';
import type { AttachSource } from './stdio.js';

/** How a process ended. */
export interface ProcessExit {
  /** Exit code (128 + n when signal n ended it). */
  exitCode: number;
  /** The signal that ended it, by name (`SIGKILL`), when one did. */
  signal?: string;
}

const SIGNAL_NAMES = new Map(Object.entries(SIGNALS).map(([name, n]) => [n, name]));

/** Turns a signal name or number into its number, or throws INVALID_ARGUMENT. */
function signalNumber(signal: string | number): number {
  const n =
    typeof signal === 'number' ? signal : SIGNALS[(signal.startsWith('SIG') ? signal : `SIG${signal}`).toUpperCase()];
  if (n === undefined || !SIGNAL_NAMES.has(n))
    throw new InvalidArgumentError('signal', `unknown signal ${String(signal)}`);
  return n;
}

/** Checks a terminal size. */
function checkSize(cols: number, rows: number): void {
  for (const [k, v] of [
    ['cols', cols],
    ['rows', rows],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 65535)
      throw new InvalidArgumentError(k, 'expected an integer from 1 to 65535');
  }
}

/** A promise that does not count as unhandled when nobody awaits it; awaiting it still throws. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** What a {@link ContainerProcess} needs from the container manager. */
export interface ProcessStarter {
  /** Starts the process; output goes to `onOutput`. */
  start(onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void): Promise<StartedExec>;
  /** Signals it. */
  signal(pid: number, startTime: number, signal: number): void;
  /** Waits for its end (default: `exited` of the started process); may kill it first, and reject. */
  wait?(running: StartedExec): Promise<{ exitCode: number; signal?: number }>;
}

/**
 * A process running in a container, started by `container.spawn()`: like a Node `ChildProcess`,
 * with `stdin`, `stdout` and `stderr` streams, plus `resize()` for its terminal and `exited`.
 * The handle is returned at once; the process starts right after (`started`). Writes to stdin
 * before then are kept and delivered in order.
 *
 * With a terminal (`tty: true`) stdout carries everything the program writes (with the
 * terminal's `\r\n`), stderr stays empty, and typed control characters act as on a terminal
 * (`\x03` interrupts the foreground job). Ending stdin without a terminal closes the process's
 * stdin (end of file); with one, it only lets go of this handle's copy of the terminal.
 *
 * @example
 * ```ts
 * const p = c.spawn(['sh'], { tty: true });
 * p.stdout.on('data', (d) => process.stdout.write(d));
 * p.stdin.write('echo hi; exit 3\n');
 * const { exitCode } = await p.exited; // 3
 * ```
 */
export class ContainerProcess {
  /** Input of the process (its terminal with `tty`). */
  readonly stdin: Writable;
  /** Its standard output (everything, with `tty`). */
  readonly stdout: Readable;
  /** Its standard error (empty with `tty`). */
  readonly stderr: Readable;
  /** Resolves once the process runs; rejects as `exited` does when it cannot start. */
  readonly started: Promise<void>;
  /**
   * Resolves when the process has ended and all its output is delivered. Rejects when it
   * could not start (`COMMAND_NOT_FOUND`, `NOT_RUNNING`, …).
   */
  readonly exited: Promise<ProcessExit>;
  #running: StartedExec | undefined;
  readonly #starter: ProcessStarter;

  /** @internal */
  constructor(starter: ProcessStarter) {
    this.#starter = starter;
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.stdin = stdin;
    this.stdout = stdout;
    this.stderr = stderr;
    const running = starter.start((stream, data) => (stream === 'stdout' ? stdout : stderr).write(data));
    const started = quiet(
      running.then((r) => {
        this.#running = r;
        const input = r.stdin ?? (r.tty !== undefined ? r.tty : undefined);
        if (input !== undefined) {
          // The terminal's copy is also used for resizing: the stream gets a copy of its own.
          stdin.pipe(new FdWritable(r.tty !== undefined ? dup(r.tty) : input));
        } else stdin.resume();
      }),
    );
    this.started = started;
    this.exited = quiet(
      (async () => {
        try {
          const r = await running;
          await started;
          const status = await (starter.wait?.(r) ?? r.exited);
          const sig = status.signal !== undefined ? SIGNAL_NAMES.get(status.signal) : undefined;
          return { exitCode: status.exitCode, ...(sig ? { signal: sig } : {}) };
        } finally {
          stdout.end();
          stderr.end();
          stdin.unpipe();
          stdin.destroy();
          if (this.#running?.tty !== undefined) close(this.#running.tty);
          if (this.#running) this.#running.tty = undefined;
        }
      })(),
    );
  }

  /** Host pid of the process, once it runs. */
  get pid(): number | undefined {
    return this.#running?.pid;
  }

  /** Sets the size of its terminal (the program gets SIGWINCH). Throws INVALID_STATE without one. */
  async resize(cols: number, rows: number): Promise<void> {
    checkSize(cols, rows);
    await this.started;
    const tty = this.#running?.tty;
    if (tty === undefined)
      throw new StateError('running', 'resize', 'this process has no terminal (spawn it with tty: true) or has ended');
    setWindowSize(tty, { cols, rows });
  }

  /** Sends a signal (default `SIGTERM`) to the process, unless it has ended. */
  async kill(signal: string | number = 'SIGTERM'): Promise<void> {
    const n = signalNumber(signal);
    await this.started;
    const r = this.#running!;
    this.#starter.signal(r.pid, r.startTime, n);
  }
}

/**
 * A live connection to a running container's stdio, from `container.attach()` (`docker
 * attach`): its output from now on, and its input when it has one (`stdin: true` or
 * `tty: true` at create). Works from any process sharing the engine's root, and several
 * attachments may be open at once. Output ends when the container stops or on {@link detach};
 * detaching (or ending `stdin`) never closes the container's own stdin.
 *
 * Made before the start (`attach()` on a created container, `docker start -a -i`), it delivers
 * the output from the program's first byte, and its `stdin` (with `stdin: true` at create) is
 * the program's stdin itself once this process starts it: ending it, or detaching, is the
 * program's end of file (stdin-once).
 */
export class ContainerAttachment {
  /**
   * Input to the container; null when it was created without `stdin` or `tty` (before the start:
   * also when another attachment of this process took the input of a `stdin` container). Before
   * the start, input to a terminal is kept until the terminal exists.
   */
  readonly stdin: Writable | null;
  /** Its standard output (everything, with a terminal). */
  readonly stdout: Readable;
  /** Its standard error. */
  readonly stderr: Readable;
  /** Resolves when output has ended: the container stopped, or the attachment was detached. */
  readonly closed: Promise<void>;
  readonly #abort = new AbortController();
  #tty: number | undefined;
  #releaseSource: (() => void) | undefined;
  /** The writer on the terminal that input made before the start goes to, once it runs. */
  #sink: Writable | undefined;
  #released = false;

  /** @internal */
  constructor(source: AttachSource) {
    this.#releaseSource = source.release;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.stdout = stdout;
    this.stderr = stderr;
    this.#tty = source.tty;
    const input = source.stdin ?? (source.tty !== undefined ? dup(source.tty) : undefined);
    this.stdin =
      input !== undefined ? new FdWritable(input) : source.ttyLater ? this.#laterTerminal(source.ttyLater) : null;
    this.stdin?.on('error', () => undefined);
    this.closed = quiet(
      (async () => {
        try {
          for await (const r of source.records(this.#abort.signal))
            (r.stream === 'stdout' ? stdout : stderr).write(r.data);
        } finally {
          stdout.end();
          stderr.end();
          this.#release();
        }
      })(),
    );
  }

  /** Sets the size of the container's terminal (its program gets SIGWINCH). Throws INVALID_STATE without one. */
  async resize(cols: number, rows: number): Promise<void> {
    checkSize(cols, rows);
    if (this.#tty === undefined)
      throw new StateError(
        'running',
        'resize',
        'this container has no terminal (create it with tty: true), or the attachment is closed',
      );
    setWindowSize(this.#tty, { cols, rows });
  }

  /** Stops following the output and lets go of the input; the container runs on. */
  async detach(): Promise<void> {
    this.#abort.abort();
    // The output's failure, if any, is `closed`'s to report (to whoever awaits it): detaching is done either way.
    await this.closed.catch(() => undefined);
  }

  /**
   * Input kept until the container's terminal exists (an attachment made before the start), then
   * written to it; dropped when the start failed. Resizing works from then on too.
   */
  #laterTerminal(later: Promise<number | undefined>): Writable {
    const held = new PassThrough();
    later.then(
      (tty) => {
        if (tty === undefined || this.#released) {
          if (tty !== undefined) close(tty);
          held.resume();
          return;
        }
        this.#tty = tty;
        this.#sink = new FdWritable(dup(tty));
        this.#sink.on('error', () => undefined);
        held.pipe(this.#sink);
      },
      (e: unknown) => held.destroy(e as Error),
    );
    return held;
  }

  #release(): void {
    this.#released = true;
    if (this.#tty !== undefined) close(this.#tty);
    this.#tty = undefined;
    this.stdin?.destroy();
    this.#sink?.destroy();
    const release = this.#releaseSource;
    this.#releaseSource = undefined;
    release?.();
  }
}
