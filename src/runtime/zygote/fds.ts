/**
 * Ownership of file descriptors while the zygote makes a process: every fd a start, an exec or a
 * fork acquires goes into one {@link FdSet}, is handed over (to the child's record, a stream, the
 * new process) or closed once, and whatever the set still owns when a step fails is closed there.
 *
 * @module
 */
import { attachCleanupErrors } from '../../errors.js';
import { close, pipe2 } from '../../kernel/fd.js';
import { pidfdGetfd, pidfdOpen } from '../../kernel/process.js';
import { O_CLOEXEC } from '../../kernel/constants.js';

/**
 * The fds one operation owns until it hands them over. Each is closed at most once: {@link
 * FdSet.close} and {@link FdSet.closeAll} close only what the set still owns. Plain numbers in one
 * array, so owning costs no more than the list the zygote kept before.
 *
 * @example
 * ```ts
 * const fds = new FdSet();
 * try {
 *   const [r, w] = fds.pipe();
 *   spawn(w);
 *   fds.close(w); // the child's end, now in the child
 *   watch(fds.release(r)); // the stream owns it now
 * } catch (e) {
 *   throw cleanupAfter(e, () => fds.closeAll());
 * }
 * ```
 */
export class FdSet {
  readonly #fds: number[] = [];

  /** Takes ownership of `fd` (-1: none, ignored); returns it. */
  add(fd: number): number {
    if (fd >= 0) this.#fds.push(fd);
    return fd;
  }

  /** A close-on-exec pipe, both ends owned here: `[read, write]`. */
  pipe(): [number, number] {
    const p = pipe2(O_CLOEXEC);
    this.#fds.push(p[0], p[1]);
    return p;
  }

  /** Hands `fd` over to another owner: it is no longer closed here. Returns it. */
  release(fd: number): number {
    this.#forget(fd);
    return fd;
  }

  /** Closes `fd` now if the set still owns it (else does nothing). */
  close(fd: number): void {
    if (this.#forget(fd)) close(fd);
  }

  /**
   * Closes every fd the set still owns (after a failure) and leaves it empty. Each is closed even
   * when one before it fails; the first failure is thrown then, the others attached to it.
   */
  closeAll(): void {
    const errors: unknown[] = [];
    for (const fd of this.#fds.splice(0)) {
      try {
        close(fd);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw attachCleanupErrors(errors[0], errors.slice(1));
  }

  /** Drops `fd` from the set (no allocation: the last entry takes its place); whether it was there. */
  #forget(fd: number): boolean {
    const i = fd < 0 ? -1 : this.#fds.indexOf(fd);
    if (i < 0) return false;
    this.#fds[i] = this.#fds[this.#fds.length - 1]!;
    this.#fds.pop();
    return true;
  }
}

/**
 * Closes the fd in `holder[key]` once: a value below 0 means none, and the field is set to -1
 * before the close, so a second call does nothing.
 */
export function closeHeld<K extends string>(holder: { [k in K]: number }, key: K): void {
  const fd = holder[key];
  if (fd < 0) return;
  holder[key] = -1;
  close(fd);
}

/**
 * Copies fd `fd` of the engine (the zygote's parent) into this process with `pidfd_getfd(2)`,
 * owned by `fds`: a pipe end the engine made for a process's stdin.
 */
export function engineFd(fds: FdSet, fd: number): number {
  const parent = pidfdOpen(process.ppid);
  try {
    return fds.add(pidfdGetfd(parent, fd));
  } finally {
    close(parent);
  }
}

/**
 * A container's stdin pipe, `[read, write]`, owned by `fds`: the engine's read end when the start
 * carries one (`StartRequest.stdinFd`; then no write end is held here, `-1`, so the engine's
 * writer alone decides when its program reads end of file), else a new pipe whose write end the
 * run's owner holds open while it runs.
 */
export function containerStdin(fds: FdSet, engineStdin: number | undefined): [number, number] {
  return engineStdin !== undefined ? [engineFd(fds, engineStdin), -1] : fds.pipe();
}
