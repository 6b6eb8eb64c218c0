/**
 * The zygote: a small Node process of berth's own, started once per engine as a child of the
 * user's process (not a daemon). It does nothing but fork container inits on request, pump their
 * output into log files, reap them and report their exit. See `protocol.ts` for the sequence.
 *
 * It runs with `--single-threaded` so V8 keeps no helper threads that could hold a lock at
 * fork time, and stays off libuv's thread pool (only synchronous fs calls and pipes on epoll).
 * It dies with its engine (PDEATHSIG), and its containers die with it (their PDEATHSIG).
 *
 * @module
 */
import { closeSync, openSync, writeSync, renameSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { open, close, pipe2 } from '../kernel/fd.js';
import { fork, waitpid, decodeWaitStatus, kill } from '../kernel/process.js';
import { unshare, setns } from '../kernel/namespaces.js';
import { CLONE_NEWPID, O_CLOEXEC, O_RDONLY, WNOHANG, __WALL } from '../kernel/constants.js';
import { KernelError } from '../errors.js';
import { allowForkOfHeap } from './fork-safety.js';
import { runInit, type InitFailure } from './init.js';
import { encodeRecord, nowNs, type LogStream } from './log-format.js';
import { processStartTime } from './proc.js';
import type { ExitRecord, StartRequest, ZygoteMessage, ZygoteRequest } from './protocol.js';

interface Child {
  id: string;
  pid: number;
  rid: number;
  logFd: number;
  exitPath: string;
  openStreams: number;
  execResult?: InitFailure | null;
  status?: { exitCode: number; signal?: number; finishedAt: number };
  done: boolean;
}

/** The zygote's state and request handling; one instance per zygote process. */
export class Zygote {
  readonly #send: (m: ZygoteMessage) => void;
  readonly #pidns = open('/proc/self/ns/pid', O_RDONLY | O_CLOEXEC);
  readonly #byPid = new Map<number, Child>();
  readonly #byId = new Map<string, Child>();

  /** Creates the zygote; `send` delivers messages to the engine. */
  constructor(send: (m: ZygoteMessage) => void) {
    this.#send = send;
  }

  /** Handles one request from the engine. */
  handle(req: ZygoteRequest): void {
    if (req.t === 'start') this.#start(req);
    else if (req.t === 'signal') {
      const c = this.#byId.get(req.id);
      try {
        if (!c || c.status) throw new Error(`container ${req.id} has no running process`);
        kill(c.pid, req.signal);
        this.#send({ t: 'ok', rid: req.rid });
      } catch (e) {
        this.#send({ t: 'failed', rid: req.rid, error: { step: 'signal', message: (e as Error).message, kind: 'other', exitCode: 1 } });
      }
    }
  }

  #start(req: StartRequest): void {
    let fds: number[] = [];
    let pid: number;
    try {
      const [outR, outW] = pipe2(O_CLOEXEC);
      const [errR, errW] = pipe2(O_CLOEXEC);
      const [exR, exW] = pipe2(O_CLOEXEC);
      fds = [outR, outW, errR, errW, exR, exW];
      allowForkOfHeap();
      unshare(CLONE_NEWPID);
      try {
        pid = fork();
      } finally {
        // In the parent only: go back to our own PID namespace for the next children.
        if (pid! !== 0) setns(this.#pidns, CLONE_NEWPID);
      }
      if (pid === 0) runInit(req.plan, { stdin: -1, stdout: outW, stderr: errW, error: exW });
      close(outW);
      close(errW);
      close(exW);
      fds = [];
      const child: Child = {
        id: req.plan.spec.id, pid, rid: req.rid, exitPath: req.exitPath, openStreams: 2, done: false,
        logFd: openSync(req.logPath, 'a'),
      };
      this.#byPid.set(pid, child);
      this.#byId.set(child.id, child);
      this.#pump(child, outR, 'stdout');
      this.#pump(child, errR, 'stderr');
      this.#watchExec(child, exR);
    } catch (e) {
      for (const fd of fds) close(fd);
      const msg = e instanceof Error ? e.message : String(e);
      const error: InitFailure = e instanceof KernelError
        ? { step: 'fork', message: msg, kind: 'kernel', syscall: e.syscall, errnoCode: e.errnoCode, exitCode: 1 }
        : { step: 'fork', message: msg, kind: 'other', exitCode: 1 };
      this.#send({ t: 'failed', rid: req.rid, error });
    }
  }

  #watchExec(child: Child, fd: number): void {
    const chunks: Buffer[] = [];
    const sock = new Socket({ fd, readable: true, writable: false });
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text) {
        let failure: InitFailure;
        try {
          failure = JSON.parse(text) as InitFailure;
        } catch {
          failure = { step: 'init', message: text, kind: 'other', exitCode: 1 };
        }
        child.execResult = failure;
        this.#send({ t: 'failed', rid: child.rid, error: failure });
      } else {
        child.execResult = null;
        const startTime = processStartTime(child.pid);
        if (startTime === undefined && !child.status) {
          // Exec succeeded but the process is already gone and not yet reaped: it is a zombie.
        }
        this.#send({ t: 'started', rid: child.rid, pid: child.pid, startTime: startTime ?? -1 });
      }
      this.#maybeFinish(child);
    });
  }

  #pump(child: Child, fd: number, stream: LogStream): void {
    const sock = new Socket({ fd, readable: true, writable: false });
    sock.on('data', (d: Buffer) => {
      writeSync(child.logFd, encodeRecord(stream, nowNs(), d));
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      child.openStreams--;
      this.#maybeFinish(child);
    });
  }

  /** Reaps every exited child (called on SIGCHLD). */
  reap(): void {
    for (;;) {
      let r;
      try {
        r = waitpid(-1, WNOHANG | __WALL);
      } catch (e) {
        if (e instanceof KernelError && e.errnoCode === 'ECHILD') return;
        throw e;
      }
      if (r.pid <= 0) return;
      const child = this.#byPid.get(r.pid);
      if (!child) continue;
      child.status = { ...decodeWaitStatus(r.status), finishedAt: Date.now() };
      this.#maybeFinish(child);
    }
  }

  #maybeFinish(child: Child): void {
    if (child.done || !child.status || child.openStreams > 0 || child.execResult === undefined) return;
    child.done = true;
    closeSync(child.logFd);
    this.#byPid.delete(child.pid);
    if (this.#byId.get(child.id) === child) this.#byId.delete(child.id);
    const record: ExitRecord = { pid: child.pid, ...child.status };
    if (child.execResult) {
      record.error = child.execResult;
      record.exitCode = child.execResult.exitCode;
      delete record.signal;
    }
    try {
      const tmp = `${child.exitPath}.tmp-${process.pid}`;
      writeFileSync(tmp, JSON.stringify(record));
      renameSync(tmp, child.exitPath);
    } catch {
      // The container's directory is gone (removed while running): nothing to record.
    }
    this.#send({ t: 'exit', id: child.id, status: record });
  }

  /** Number of containers whose process has not been reported as ended yet. */
  get running(): number {
    return this.#byPid.size;
  }
}
