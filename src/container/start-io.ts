/**
 * stdin of a run's main program without races: `input` given to `run`/`start` (`echo … | docker
 * run -i`), and `attach()` on a created container (`docker start -a -i`). Both make the stdin pipe
 * in this process before the start and hand its read end to the start (`start-stdin.ts`), so the
 * program's first read finds the pipe, and this process's write end is the only one: the program
 * reads end of file when the input is written, or the attachment's stdin ends or detaches
 * (stdin-once, as Docker's `StdinOnce`).
 *
 * @module
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { attachCleanupErrors, InvalidArgumentError } from '../errors.js';
import { withLock } from '../state/lock.js';
import { closeFd, stdinPipe } from '../runtime/host.js';
import { followRecords } from './logs.js';
import type { ContainerService } from './service.js';
import type { ContainerRecord } from './record.js';
import { can } from './status.js';
import { cleanupErrors } from './cleanup.js';
import { copyRunStdio, FdWritable, type AttachSource } from './stdio.js';
import { addPendingAttach, hasPendingStdin, type PendingAttach } from './start-stdin.js';

/** What `input` may be: text (UTF-8), bytes, or a stream of them. */
export type RunInput = string | Buffer | Readable;

const inputSchema = z.union([z.string(), z.instanceof(Buffer), z.instanceof(Readable)]);

/**
 * Checks `input` (absent: undefined). Not through `parseOptions`: stdin is bytes, and a NUL byte
 * in it is data, not the end of a C string.
 */
export function parseInput(input: unknown): RunInput | undefined {
  if (input === undefined) return undefined;
  const r = inputSchema.safeParse(input);
  if (!r.success)
    throw new InvalidArgumentError('input', 'expected a string, a Buffer or a Readable', { cause: r.error });
  return r.data;
}

/**
 * Refuses `input` for a container it cannot be given to, naming the field `input`: one with a
 * terminal (a terminal echoes, edits lines and ends input only at `^D`: not the bytes given), and
 * one with a restart policy (the input goes to one run; a restarted program would start again
 * without it).
 */
export function checkInput(config: { tty?: boolean | undefined; restart?: string | undefined }): void {
  if (config.tty)
    throw new InvalidArgumentError(
      'input',
      'cannot be given to a container with a terminal (tty: true): a terminal does not pass bytes as they are; use attach() to type into it',
    );
  if (config.restart !== undefined && config.restart !== 'no')
    throw new InvalidArgumentError(
      'input',
      `is given to one run, and the restart policy '${config.restart}' would start the program again without it; use restart 'no'`,
    );
}

/**
 * Starts the container `ref` with `input` on its program's stdin: the pipe is made here, its read
 * end becomes the program's stdin at the start, and `input` is written to the write end in the
 * background once the program runs (a large input never holds up the start), which is then
 * closed (end of file). A program that exits, or closes its stdin, before reading all of it ends
 * the write quietly (EPIPE), and the rest of a Readable is not read (it is destroyed). The write
 * is this process's: for a detached container, if this process ends before the whole input is
 * written, the program reads end of file there. Resolves with the started record.
 */
export async function startWithInput(svc: ContainerService, ref: string, input: RunInput): Promise<ContainerRecord> {
  const rec = await svc.get(ref);
  checkInput({ tty: rec.config.tty, restart: rec.config.restart });
  const [r, w] = stdinPipe();
  let started: ContainerRecord;
  try {
    started = await svc.start(rec.id, { stdinFd: r });
  } catch (e) {
    throw attachCleanupErrors(e, await cleanupErrors([() => closeFd(w)]));
  } finally {
    closeFd(r);
  }
  const source = typeof input === 'string' || Buffer.isBuffer(input) ? Readable.from([Buffer.from(input)]) : input;
  // Nobody awaits the write: its only failures are the program's going away (EPIPE, above) and a
  // failing Readable, whose error is the stream's own (emitted on it); the program reads end of file then.
  pipeline(source, new FdWritable(w)).catch(() => undefined);
  return started;
}

/**
 * The source of `container.attach()`: for a created container, an attachment that waits for its
 * start (`docker start -a -i`), else the running container's (`ContainerService.attach`).
 *
 * Waiting for the start, its output is followed from the log's start, so nothing the program
 * writes first is lost, until the container has run and stopped (or was removed, or a start of
 * this process failed). With `stdin` (the default) and a container created with `stdin: true`,
 * the attachment's stdin is a pipe made now, whose read end becomes the program's stdin when this
 * process starts it; a second such attachment gets none (one input per run). With a terminal,
 * whose master exists only once the init made it, input is kept until then (each such attachment
 * has its own copy). Without `stdin: true` or `tty`, it has no stdin.
 * A start made by another process does not see this attachment: the program then gets its usual
 * stdin, and this attachment's input goes nowhere.
 */
export async function attachSource(
  svc: ContainerService,
  ref: string,
  o: { logs?: boolean; stdin?: boolean },
): Promise<AttachSource> {
  const first = await svc.get(ref);
  if (!can('preattach', first.state.status)) return svc.attach(ref, o);
  const p = svc.paths(first.id);
  const entry: PendingAttach = { stdinR: -1, failed: false };
  let stdin: number | undefined;
  let ttyLater: Promise<number | undefined> | undefined;
  // Under the container's lock, which a start holds throughout: it sees this entry, or ran before.
  const release = await withLock(p.lock, async () => {
    const rec = await svc.records.get(first.id);
    if (!rec || !can('preattach', rec.state.status)) return undefined;
    if (o.stdin !== false && rec.config.openStdin && !rec.config.tty && !hasPendingStdin(rec.id))
      [entry.stdinR, stdin] = stdinPipe();
    // A terminal is made by the init: its master is copied once the start has run it.
    if (o.stdin !== false && rec.config.tty)
      ttyLater = new Promise((resolve, reject) => {
        entry.onStart = (started) => {
          try {
            resolve(started ? copyRunStdio(started.state).tty : undefined);
          } catch (e) {
            reject(e as Error);
          }
        };
      });
    return addPendingAttach(rec.id, entry);
  });
  // Started (or removed) meanwhile: the running container's attachment.
  if (!release) return svc.attach(ref, o);
  const log = { path: p.log, maxFile: first.config.log.maxFile };
  const going = async (): Promise<boolean> => {
    const rec = await svc.records.get(first.id);
    if (!rec) return false;
    if (can('preattach', rec.state.status)) return !entry.failed;
    return svc.isRunning(rec.id);
  };
  return {
    records: (signal) => followRecords(log, { from: 'start', signal }, going),
    ...(stdin !== undefined ? { stdin } : {}),
    ...(ttyLater ? { ttyLater } : {}),
    release,
  };
}
