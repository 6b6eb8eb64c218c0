/**
 * The end of a process the zygote started: reaping on SIGCHLD, a detached container's monitor
 * ending, and, once its status, its streams and its exec report are all in, the exit recorded
 * (a container's exit file, written into room set aside at its start) and reported.
 *
 * @module
 */
import { closeSync, ftruncateSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { close } from '../../kernel/fd.js';
import { decodeWaitStatus, waitpid } from '../../kernel/process.js';
import { WNOHANG, __WALL } from '../../kernel/constants.js';
import { KernelError } from '../../errors.js';
import { parseExitRecord, type ExitRecord } from '../protocol.js';
import { closeHeld } from './fds.js';
import { drainTerminal } from './pump.js';
import type { Child, ZygoteState } from './child.js';

/**
 * Bytes set aside for a container's exit file when it starts (one page or block): its exit record
 * is later written into them in place, so a disk the container filled cannot lose its exit, which
 * every other process sharing the root reads to learn it.
 */
const EXIT_FILE_RESERVE = 4096;

/** Where the exit record of the container with exit file `exitPath` is written before its rename. */
function exitTempPath(exitPath: string): string {
  return `${exitPath}.tmp-${process.pid}`;
}

/** Sets aside the room of a container's exit file (see {@link EXIT_FILE_RESERVE}); best effort. */
export function reserveExitFile(exitPath: string): void {
  try {
    writeFileSync(exitTempPath(exitPath), Buffer.alloc(EXIT_FILE_RESERVE, 0x20));
  } catch {
    // A full disk already: the exit is written if there is room then.
  }
}

/** Writes `text` into the reserved temp file (in place: no new blocks) and renames it to `exitPath`. */
function writeExitFile(exitPath: string, text: string): void {
  const tmp = exitTempPath(exitPath);
  const buf = Buffer.from(text);
  let fd: number;
  try {
    fd = openSync(tmp, 'r+');
  } catch {
    // No reserved temp file to write in place: a new one (whose failure is thrown).
    fd = openSync(tmp, 'w');
  }
  try {
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, off);
    ftruncateSync(fd, buf.length);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, exitPath);
}

/** Reaps every exited child (called on SIGCHLD). */
export function reap(z: ZygoteState): void {
  for (;;) {
    let r;
    try {
      r = waitpid(-1, WNOHANG | __WALL);
    } catch (e) {
      if (e instanceof KernelError && e.errnoCode === 'ECHILD') return;
      throw e;
    }
    if (r.pid <= 0) return;
    const status = { ...decodeWaitStatus(r.status), finishedAt: Date.now() };
    // A template died before it was used (its preparation failed): dropped.
    if (z.pool.died(r.pid)) continue;
    const detached = z.byMonitor.get(r.pid);
    if (detached) {
      z.byMonitor.delete(r.pid);
      monitorEnded(z, detached, status);
      continue;
    }
    const child = z.byPid.get(r.pid);
    if (!child) continue;
    child.status = status;
    maybeFinish(z, child);
  }
}

/**
 * A detached container's monitor ended: the container's exit is what it wrote. Without an
 * exit file the monitor was killed, and the container with it (PDEATHSIG): recorded as SIGKILL.
 */
function monitorEnded(z: ZygoteState, child: Child, monitorStatus: { finishedAt: number }): void {
  const d = child.detached!;
  closeHeld(d, 'goW');
  let written: ExitRecord | undefined;
  try {
    const parsed = parseExitRecord(JSON.parse(readFileSync(child.exitPath, 'utf8')));
    if (parsed && parsed.pid === child.pid) written = parsed;
  } catch {
    // No exit file.
  }
  d.exitWritten = written !== undefined;
  child.status = written
    ? {
        exitCode: written.exitCode,
        ...(written.signal !== undefined ? { signal: written.signal } : {}),
        finishedAt: written.finishedAt,
        ...(written.timedOut ? { timedOut: true } : {}),
        ...(written.outputTruncated ? { outputTruncated: written.outputTruncated } : {}),
      }
    : { exitCode: 137, signal: 9, finishedAt: monitorStatus.finishedAt };
  // Its init's report may still be pending (it died before execve): do not wait for it.
  child.execResult ??= null;
  maybeFinish(z, child);
}

/** Reports `child`'s end once its status, its streams and its exec report are all in. */
export function maybeFinish(z: ZygoteState, child: Child): void {
  if (child.done || !child.status || child.openStreams > 0 || child.execResult === undefined) return;
  child.done = true;
  z.byPid.delete(child.pid);
  if (child.ttyFd >= 0 && !child.detached) drainTerminal(z, child);
  closeHeld(child, 'stdinW');
  if (!child.ttyUncopied) closeHeld(child, 'ttyFd');
  // Ended before it was let into its cgroups.
  if (child.cgroupAck && !child.cgroupAck.terminal) close(child.cgroupAck.fd);
  child.cgroupAck = undefined;
  if (child.exec) {
    const status: ExitRecord = { pid: child.pid, ...child.status };
    if (child.execResult)
      Object.assign(status, { error: child.execResult, exitCode: child.execResult.exitCode, signal: undefined });
    z.send({ t: 'execExit', id: child.id, status: JSON.parse(JSON.stringify(status)) as ExitRecord });
    return;
  }
  child.log?.close();
  if (z.byId.get(child.id) === child) z.byId.delete(child.id);
  const record: ExitRecord = { pid: child.pid, ...child.status };
  const cut = child.log?.truncated;
  if (cut) record.outputTruncated = cut;
  if (child.execResult) {
    record.error = child.execResult;
    record.exitCode = child.execResult.exitCode;
    delete record.signal;
  }
  // A detached container's monitor has written it already.
  if (!child.detached?.exitWritten) {
    try {
      writeExitFile(child.exitPath, JSON.stringify(record));
    } catch {
      // The container's directory is gone (removed while running): nothing to record.
    }
  }
  z.send({ t: 'exit', id: child.id, status: record });
  if (child.mntNs >= 0) {
    // Its mounts are torn down now, in this process, once the exit is on its way. (Not on
    // libuv's thread pool: the zygote keeps no threads that could hold a lock when it forks.)
    const fd = child.mntNs;
    child.mntNs = -1;
    setImmediate(() => close(fd));
  }
  // Refill when a container is done rather than while an init runs: a template forked then
  // would compete with it for the CPU and the kernel's namespace locks.
  z.pool.refill();
}
