/**
 * The zygote's side of a running process's pipes: its output pumped into its log (or to the
 * engine for an exec), the error pipe watched for the terminal handover, the exec marker and a
 * failure report, and the start reported once the program is being exec'd.
 *
 * @module
 */
import { readSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { ReadStream as TtyReadStream } from 'node:tty';
import { close, dup, setNonBlocking } from '../../kernel/fd.js';
import { pidfdGetfd, pidfdOpen } from '../../kernel/process.js';
import { errnoName } from '../../kernel/libc.js';
import { EXEC_MARKER, TERMINAL_MARKER, type InitFailure } from '../init-report.js';
import { nowNs, type LogStream } from '../log-format.js';
import { MONITOR_FDS } from '../detach.js';
import { closeHeld } from './fds.js';
import type { Child, ZygoteState } from './child.js';

/**
 * Reads the error pipe of a starting process (see `EXEC_MARKER` and `TERMINAL_MARKER` in
 * `init.ts`): the terminal handover, then the marker, which is the start (replied at once),
 * then a failure report, or end of file when execve succeeded.
 */
export function watchExec(z: ZygoteState, child: Child, fd: number): void {
  let chunks: Buffer[] = [];
  let started = false;
  const sock = new Socket({ fd, readable: true, writable: false });
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    if (started) return;
    let text = Buffer.concat(chunks).toString('latin1');
    if (child.ctrlW >= 0 && text.startsWith(TERMINAL_MARKER)) {
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      takeTerminal(z, child, Number(text.slice(1, nl)));
      text = text.slice(nl + 1);
      chunks = [Buffer.from(text, 'latin1')];
    }
    if (text.startsWith(EXEC_MARKER)) {
      started = true;
      chunks = [Buffer.from(text.slice(EXEC_MARKER.length), 'latin1')];
      startedProgram(z, child);
    }
  });
  sock.on('error', () => undefined);
  sock.on('close', () => {
    closeHeld(child, 'ctrlW');
    const text = Buffer.concat(chunks).toString('utf8');
    if (started && !text) child.execResult = null;
    else {
      let failure: InitFailure;
      if (!text)
        failure = {
          step: 'init',
          message: 'the container init died before it could run the program',
          kind: 'other',
          exitCode: 1,
        };
      else {
        try {
          failure = JSON.parse(text) as InitFailure & { errno?: number };
          // berth-exec and berth-init report errno numbers: named here, as the kernel layer
          // names them ("mount(…) failed: ENOENT", as a KernelError's message reads).
          const errno = (failure as { errno?: number }).errno;
          if (typeof errno === 'number' && !failure.errnoCode) {
            failure.errnoCode = errnoName(errno);
            failure.message = failure.message.endsWith(' failed')
              ? `${failure.message}: ${failure.errnoCode}`
              : `${failure.message} (${failure.errnoCode})`;
          }
          delete (failure as { errno?: number }).errno;
        } catch {
          // Not a report in JSON (a crash's text): the text itself is the failure's message.
          failure = { step: 'init', message: text, kind: 'other', exitCode: 1 };
        }
      }
      child.execResult = failure;
      // After the start was reported, a failed execve is the process's end (in its exit record).
      if (!started) {
        letMonitorGo(child);
        z.send({ t: 'failed', rid: child.rid, error: failure });
      }
    }
    z.finish(child);
  });
}

/**
 * Watches a detached container's monitor until it has exec'd the monitor program (or died):
 * end of file on `fd`. Its exit is not reported before (it counts as an open stream).
 */
export function watchMonitorReady(z: ZygoteState, child: Child, fd: number): void {
  child.openStreams++;
  const sock = new Socket({ fd, readable: true, writable: false });
  sock.on('error', () => undefined);
  sock.on('close', () => {
    const d = child.detached!;
    d.ready = true;
    if (d.startPending) sendStarted(z, child);
    child.openStreams--;
    z.finish(child);
  });
  sock.resume();
}

/**
 * The program of `child` is being exec'd: lets a detached one's monitor go, and reports the
 * start (a detached one's once its monitor runs, see `Child.detached`).
 */
function startedProgram(z: ZygoteState, child: Child): void {
  // A spawned berth-init had no mount namespace of its own yet when it was started; it has now.
  if (!child.exec && !child.detached && child.mntNs < 0) child.mntNs = z.spawner.holdMountNamespace(child.pid);
  letMonitorGo(child);
  const d = child.detached;
  if (d && !d.ready) d.startPending = true;
  else sendStarted(z, child);
}

/** Sends the `started` reply of `child`. */
function sendStarted(z: ZygoteState, child: Child): void {
  const d = child.detached;
  if (d) d.startPending = false;
  z.send({
    t: 'started',
    rid: child.rid,
    pid: child.pid,
    startTime: child.startTime,
    ...(d
      ? {
          holderPid: d.monitorPid,
          ...(d.stdin ? { stdinFd: MONITOR_FDS.stdin } : {}),
          ...(child.ttyFd >= 0 ? { ttyFd: MONITOR_FDS.output } : {}),
        }
      : {
          ...(child.stdinW >= 0 ? { stdinFd: child.stdinW } : {}),
          ...(child.ttyFd >= 0 ? { ttyFd: child.ttyFd } : {}),
        }),
  });
  if (child.exec && child.ttyFd >= 0) {
    child.ttyUncopied = true;
    z.execTty.set(child.id, child);
  }
}

/** A detached container's monitor may start: it takes the terminal's master from us, or reads the pipes. */
export function letMonitorGo(child: Child): void {
  const d = child.detached;
  if (!d || d.goW < 0) return;
  try {
    writeSync(d.goW, `${child.ttyFd}\n`);
  } catch {
    // It died: its end is reported by reap().
  }
  closeHeld(d, 'goW');
}

/**
 * Copies the master of the terminal `child` made (its fd `fd`) into this process, lets the
 * child go on, and pumps the master's output as stdout. On failure the child is not acked and
 * reports the error itself.
 */
function takeTerminal(z: ZygoteState, child: Child, fd: number): void {
  let master = -1;
  try {
    const pidfd = pidfdOpen(child.pid);
    try {
      master = pidfdGetfd(pidfd, fd);
    } finally {
      close(pidfd);
    }
    writeSync(child.ctrlW, '1');
  } catch {
    // Not acked: the child fails its start at the terminal step and reports that itself.
    if (master >= 0) close(master);
    master = -1;
  }
  closeHeld(child, 'ctrlW');
  if (master < 0) return;
  // Kept until the process is reaped, so a copy taken by an attacher while the process runs
  // is always this master (the stream below closes its own fd at the end of output).
  child.ttyFd = master;
  // A detached container's monitor takes the master over and reads it.
  if (child.detached) return;
  const readFd = dup(master);
  // A master reads EIO once every slave fd is closed: the tty stream ends there.
  pump(z, child, readFd, 'stdout', new TtyReadStream(readFd));
}

/** Output of `child`: a record in its log, or a message to the engine for an exec. */
function output(z: ZygoteState, child: Child, stream: LogStream, d: Buffer): void {
  if (child.exec) z.send({ t: 'output', id: child.id, stream, data: d.toString('base64') });
  else child.log?.write(stream, nowNs(), d);
}

/**
 * Reads what is left on a terminal's master once its process has ended and its stream has
 * closed. The stream ends at the first EIO, and the kernel can report that while the last
 * output is still on its way to the master: measured on this VM's 6.18 kernel under full CPU
 * load, 2 of 900 short tty containers lost their last line before this; with it, 3 of 900 had
 * their last 3 bytes read here and none lost any. Non-blocking (a process the ended one left behind may still hold
 * the terminal): ends at EAGAIN or EIO.
 */
export function drainTerminal(z: ZygoteState, child: Child): void {
  const buf = Buffer.allocUnsafe(65536);
  try {
    setNonBlocking(child.ttyFd, true);
  } catch {
    // The master is closed already: nothing left to read.
    return;
  }
  for (;;) {
    let n: number;
    try {
      n = readSync(child.ttyFd, buf, 0, buf.length, null);
    } catch {
      // EAGAIN (all read) or EIO (no slave left): the end, as documented.
      return;
    }
    if (n <= 0) return;
    output(z, child, 'stdout', Buffer.from(buf.subarray(0, n)));
  }
}

/** Pumps `fd` (or `source` reading it) into `child`'s output as `stream` until it closes. */
export function pump(z: ZygoteState, child: Child, fd: number, stream: LogStream, source?: TtyReadStream): void {
  if (source) child.openStreams++;
  const sock = source ?? new Socket({ fd, readable: true, writable: false });
  sock.on('data', (d: Buffer) => output(z, child, stream, d));
  sock.on('error', () => undefined);
  sock.on('close', () => {
    child.openStreams--;
    z.finish(child);
  });
}
