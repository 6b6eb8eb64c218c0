/**
 * The engine's side of a process's stdio: writing to a stdin pipe or a terminal master this
 * process holds a copy of, and copying such fds out of the process that keeps them (the zygote,
 * or a detached container's monitor) with `pidfd_getfd(2)`.
 *
 * Input goes straight to the kernel object (pipe or terminal), from any process, with no
 * message passing; output is read from the container's log file by whoever wants it.
 *
 * @module
 */
import { fstatSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { KernelError } from '../errors.js';
import type { ContainerState } from './record.js';
import type { LogRecord } from '../runtime/log-format.js';
import { closeFd as close, isSameProcess, pidfdGetfd, pidfdOpen, setNonBlocking } from '../runtime/host.js';
import { attachCleanupErrors } from '../errors.js';

/** Whether `e` says the process or its fd is gone (`ESRCH`, `EBADF`). */
function isGone(e: unknown): boolean {
  return e instanceof KernelError && (e.errnoCode === 'ESRCH' || e.errnoCode === 'EBADF');
}

/** What a `ContainerAttachment` is built from (see `ContainerService.attach`). */
export interface AttachSource {
  /** The container's output records, from now (or from the start), until it stops or `signal` aborts. */
  records(signal: AbortSignal): AsyncIterable<LogRecord>;
  /** This process's copy of the container's stdin pipe, when it has one. */
  stdin?: number;
  /** This process's copy of its terminal's master, when it has one. */
  tty?: number;
  /**
   * Its terminal's master (this process's copy) once a start of this process runs it, for an
   * attachment made before the start; undefined when that start failed. Input waits for it.
   */
  ttyLater?: Promise<number | undefined>;
  /** Lets go of what the source holds besides `stdin` and `tty`; called once, when the attachment ends. */
  release?: () => void;
}

/** How long a write waits for room in a full pipe or terminal before trying again. */
const RETRY_MS = 5;

/**
 * A Writable over a pipe or terminal fd owned by this process. Writes never block the event
 * loop (the fd is made non-blocking; a full buffer is retried shortly). `end()` and `destroy()`
 * close the fd: for a pipe this is the reader's end of file when no other copy is open.
 */
export class FdWritable extends Writable {
  #fd: number;

  /** Takes ownership of `fd`. */
  constructor(fd: number) {
    super({ decodeStrings: true });
    this.#fd = fd;
    setNonBlocking(fd, true);
  }

  /** @internal */
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    let off = 0;
    const step = (): void => {
      try {
        while (off < chunk.length) off += writeSync(this.#fd, chunk, off, chunk.length - off);
        cb();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') setTimeout(step, RETRY_MS);
        else cb(e as Error);
      }
    };
    step();
  }

  /** @internal */
  override _final(cb: (e?: Error | null) => void): void {
    cb(this.#close());
  }

  /** @internal */
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const closing = this.#close();
    cb(err && closing ? (attachCleanupErrors(err, [closing]) as Error) : (err ?? closing));
  }

  /** Closes the fd (once); returns the error of the close, if it failed. */
  #close(): Error | null {
    if (this.#fd < 0) return null;
    const fd = this.#fd;
    this.#fd = -1;
    try {
      close(fd);
      return null;
    } catch (e) {
      return e as Error;
    }
  }
}

/** Kind of fd {@link copyHolderFd} expects. */
export type HeldFdKind = 'pipe' | 'terminal';

/**
 * Copies fd `fd` of the process `holderPid` (started at `holderStart`) into this process, and
 * checks it is the kind of object expected. `stillValid` is asked after the copy: the holder
 * keeps these fds until the container's process ends, so when it still runs the copy is the
 * right object (the number was not reused). Returns undefined when the holder or the process is
 * gone, or the fd is not what it should be.
 */
export function copyHolderFd(
  holderPid: number,
  holderStart: number,
  fd: number,
  kind: HeldFdKind,
  stillValid: () => boolean,
): number | undefined {
  let pidfd: number;
  try {
    pidfd = pidfdOpen(holderPid);
  } catch (e) {
    // The holder is gone: so is what it held.
    if (isGone(e)) return undefined;
    throw e;
  }
  let copy = -1;
  try {
    if (!isSameProcess(holderPid, holderStart)) return undefined;
    copy = pidfdGetfd(pidfd, fd);
    const st = fstatSync(copy);
    // A terminal master is the devpts instance's ptmx node: character device 5:2.
    const ok = kind === 'pipe' ? st.isFIFO() : st.isCharacterDevice() && st.rdev === ((5 << 8) | 2);
    if (!ok || !stillValid()) {
      close(copy);
      return undefined;
    }
    return copy;
  } catch (e) {
    if (copy >= 0) close(copy);
    // The holder exited, or closed the fd, in between.
    if (isGone(e)) return undefined;
    throw e;
  } finally {
    close(pidfd);
  }
}

/**
 * Copies, into this process, the stdin pipe's write end and terminal master of the run `state`
 * describes, from the run's owner that holds them (the zygote, or a detached container's monitor;
 * `state.stdio` has their numbers there). Each absent when the run has none, or no longer runs.
 */
export function copyRunStdio(state: ContainerState): { stdin?: number; tty?: number } {
  const io = state.stdio;
  if (!io) return {};
  const alive = () => isSameProcess(state.pid, state.startTime);
  const stdin =
    io.stdinFd !== undefined ? copyHolderFd(state.ownerPid, state.ownerStart, io.stdinFd, 'pipe', alive) : undefined;
  const tty =
    io.ttyFd !== undefined ? copyHolderFd(state.ownerPid, state.ownerStart, io.ttyFd, 'terminal', alive) : undefined;
  return { ...(stdin !== undefined ? { stdin } : {}), ...(tty !== undefined ? { tty } : {}) };
}
