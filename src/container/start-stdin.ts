/**
 * A run's stdin made by the engine before its program starts, so that nothing is raced: the pipe
 * exists (and its read end is the program's stdin) before the program's first read, and the
 * engine's write end is the only one (`docker run -i` with a closing input, `docker start -a -i`).
 *
 * Two things give a start such a pipe: `input` given to `run`/`start` (see `start-io.ts`), and an
 * attachment made while the container was created (`attach()` before `start()`), which waits
 * here, in this process, until a start of this process takes its pipe. The start passes the read
 * end to the zygote (`StartRequest.stdinFd`), which copies it with `pidfd_getfd(2)` and holds no
 * write end: neither does a detached container's monitor. The program reads end of file once
 * the write end is closed (the input written, or the attachment's stdin ended or detached).
 *
 * @module
 */
import type { Plan } from '../runtime/plan.js';
import type { ContainerRecord } from './record.js';
import { closeFd } from '../runtime/host.js';

/** An attachment made before its container's start, waiting for a start of this process. */
export interface PendingAttach {
  /** The read end of its stdin pipe (this process's fd); -1 without one, or once a start took it. */
  stdinR: number;
  /** Set when a start of this process tried and failed: the attachment's output ends then. */
  failed: boolean;
  /** Called once by the start that took it: with the running record, or undefined when it failed. */
  onStart?: (started: ContainerRecord | undefined) => void;
}

/** Attachments waiting for their container's start, by container id (this process's fds). */
const waiting = new Map<string, Set<PendingAttach>>();

/**
 * Registers `entry` for container `id` (under the container's lock, so that a start either sees
 * it or ran before). Returns the function that lets go of it: it closes its read end if no start
 * took it.
 */
export function addPendingAttach(id: string, entry: PendingAttach): () => void {
  let set = waiting.get(id);
  if (!set) waiting.set(id, (set = new Set()));
  set.add(entry);
  return () => {
    const s = waiting.get(id);
    if (s?.delete(entry) && s.size === 0) waiting.delete(id);
    closeRead(entry);
  };
}

/** Whether an attachment waiting for container `id`'s start holds its stdin already (one does at most). */
export function hasPendingStdin(id: string): boolean {
  return [...(waiting.get(id) ?? [])].some((e) => e.stdinR >= 0);
}

/**
 * The attachments waiting for container `id`'s start, taken by a start (under its lock): the
 * stdin pipe's read end one of them holds (`stdinFd`), and `settle(started)`, which closes that
 * read end (the zygote has its copy by then), tells each what became of the start (`onStart`) and,
 * when it failed (`started` undefined), ends their output.
 */
export function takePendingAttaches(id: string): {
  stdinFd?: number;
  settle(started: ContainerRecord | undefined): void;
} {
  const entries = [...(waiting.get(id) ?? [])];
  waiting.delete(id);
  const withStdin = entries.find((e) => e.stdinR >= 0);
  return {
    ...(withStdin ? { stdinFd: withStdin.stdinR } : {}),
    settle(started) {
      for (const e of entries) {
        closeRead(e);
        if (!started) e.failed = true;
        e.onStart?.(started);
      }
    },
  };
}

/** `plan` with a stdin pipe for its program when the start has one (`stdinFd`). */
export function withStdin(plan: Plan, stdinFd: number | undefined): Plan {
  if (stdinFd === undefined) return plan;
  return { ...plan, spec: { ...plan.spec, process: { ...plan.spec.process, stdin: true } } };
}

/** Closes `entry`'s read end once. */
function closeRead(entry: PendingAttach): void {
  if (entry.stdinR < 0) return;
  const fd = entry.stdinR;
  entry.stdinR = -1;
  closeFd(fd);
}
