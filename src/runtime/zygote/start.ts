/**
 * A container's start in the zygote: its init made (`berth-init` spawned, a pooled or new
 * template, or a detached container's monitor-to-be), its plan written on the control pipe,
 * its interfaces wired from the host, the cgroup ack, and its pipes handed to the pump.
 *
 * @module
 */
import { writeFileSync, writeSync } from 'node:fs';
import { close } from '../../kernel/fd.js';
import { kill } from '../../kernel/process.js';
import { CLONE_NEWNET, SIGNALS } from '../../kernel/constants.js';
import { BerthError, cleanupAfter, KernelError } from '../../errors.js';
import type { InitFailure } from '../init-report.js';
import { DEFAULT_LOG_LIMITS, LogWriter } from '../log-writer.js';
import type { StartRequest } from '../protocol.js';
import type { RuntimeSpec } from '../plan.js';
import { encodeInitPlan } from '../native-init.js';
import { setupNetworkFromHost } from '../net-setup.js';
import { containerStdin, FdSet } from './fds.js';
import { pump, watchExec, watchMonitorReady } from './pump.js';
import { reserveExitFile } from './reap.js';
import type { Detached, Template } from './spawn.js';
import type { Child, ZygoteState } from './child.js';

/** A start that failed in the zygote at `step` (a step name as the init's failures carry). */
class StartStepError extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/**
 * The plan for `berth-init` when `req` can be started with it (see {@link StartRequest.init}
 * and `nativeInitUnsupported`); undefined when it takes the JavaScript path.
 */
function nativePlanOf(req: StartRequest): Buffer | undefined {
  if (!req.init) return undefined;
  // Interfaces are wired from here, in a network namespace we make (the init does not unshare one).
  const plan = req.plan.spec.interfaces?.length
    ? { ...req.plan, unshareFlags: req.plan.unshareFlags & ~CLONE_NEWNET }
    : req.plan;
  try {
    return encodeInitPlan(plan);
  } catch (e) {
    // A plan the native encoding cannot carry (UNSUPPORTED) takes the JavaScript path.
    if (e instanceof BerthError && e.code === 'UNSUPPORTED') return undefined;
    throw e;
  }
}

/**
 * Starts a container: replies `started` once its program is being exec'd (see `watchExec`),
 * or `failed`. Every fd acquired on the way is owned by one {@link FdSet} until the child's
 * record, its streams or its processes take it over; on a failure what is left is closed there.
 */
export function start(z: ZygoteState, req: StartRequest): void {
  const owned = new FdSet();
  const nativePlan = nativePlanOf(req);
  const init = nativePlan ? req.init : undefined;
  const ifaces = init ? (req.plan.spec.interfaces ?? []) : [];
  const netns = ifaces.length ? { fd: -1 } : undefined;
  if (!init) z.pool.want();
  try {
    const flags = req.plan.unshareFlags;
    const proc = req.plan.spec.process;
    let t: Template | undefined;
    let stdinW = -1;
    let readyR = -1;
    let detached: Detached | undefined;
    if (req.detach) {
      const d = z.spawner.forkDetached(owned, flags, req, req.detach.monitor, init, netns);
      t = d.template;
      readyR = d.readyR;
      detached = d.detached;
    } else if (proc.stdin && !proc.terminal) {
      // A stdin pipe is wired at fork time: this start gets a template of its own.
      const [r, w] = containerStdin(owned, req.stdinFd);
      stdinW = w;
      try {
        t = init ? z.spawner.spawnInit(owned, init, flags, r, netns) : z.spawner.forkTemplate(owned, flags, r);
      } finally {
        owned.close(r);
      }
    } else if (init) t = z.spawner.spawnInit(owned, init, flags, -1, netns);
    else if ((t = z.pool.take(flags))) {
      owned.add(t.outR);
      owned.add(t.errR);
      owned.add(t.exR);
      owned.add(t.ctrlW);
    }
    t ??= z.spawner.forkTemplate(owned, flags);
    // A spawned berth-init may not have made its mount namespace yet: then it is taken at its start (see pump.ts).
    const mntNs = owned.add(detached ? -1 : z.spawner.holdMountNamespace(t.pid));
    sendPlan(t, nativePlan, req);
    // While the init makes its mounts; it cannot exec before the cgroup ack, sent below.
    if (netns) wireInterfaces(owned, t, ifaces, netns);
    const child: Child = {
      id: req.plan.spec.id,
      pid: t.pid,
      startTime: t.startTime,
      rid: req.rid,
      exec: false,
      exitPath: req.exitPath,
      openStreams: detached ? 0 : 2,
      done: false,
      ...(detached ? {} : { log: new LogWriter(req.logPath, req.log ?? DEFAULT_LOG_LIMITS) }),
      ctrlW: proc.terminal ? t.ctrlW : -1,
      stdinW,
      ttyFd: -1,
      mntNs,
      cgroupAck: { fd: t.ctrlW, procs: req.plan.spec.cgroupProcs ?? [], terminal: !!proc.terminal },
      ...(detached ? { detached } : {}),
    };
    // The child owns its control pipe, stdin, mount namespace and a detached one's go pipe now.
    owned.release(t.ctrlW);
    owned.release(stdinW);
    owned.release(mntNs);
    if (detached) owned.release(detached.goW);
    if (!detached) reserveExitFile(req.exitPath);
    // Let the init into its cgroups now, or once the engine has made them (see CgroupsReadyRequest).
    if (!req.cgroupsPending) ackCgroups(child, true);
    z.byId.set(child.id, child);
    if (detached) {
      z.byMonitor.set(detached.monitorPid, child);
      watchMonitorReady(z, child, readyR);
      owned.release(readyR);
    } else {
      z.byPid.set(t.pid, child);
      pump(z, child, t.outR, 'stdout');
      owned.release(t.outR);
      pump(z, child, t.errR, 'stderr');
      owned.release(t.errR);
    }
    watchExec(z, child, t.exR);
    owned.release(t.exR);
  } catch (e) {
    // A detached container's monitor-to-be waits for our go: end of file (its close here) lets it exit.
    z.send({ t: 'failed', rid: req.rid, error: startFailure(cleanupAfter(e, () => owned.closeAll())) });
  }
}

/** Writes the plan on `t`'s control pipe: `nativePlan` for `berth-init`, else the JSON plan, length-prefixed. */
function sendPlan(t: Template, nativePlan: Buffer | undefined, req: StartRequest): void {
  if (nativePlan) writeSync(t.ctrlW, nativePlan);
  else {
    const body = Buffer.from(JSON.stringify(req.plan));
    const header = Buffer.alloc(4);
    header.writeUInt32LE(body.length, 0);
    writeSync(t.ctrlW, Buffer.concat([header, body]));
  }
}

/**
 * Wires `ifaces` from the host into the network namespace `netns` made for `t` (a spawned
 * `berth-init`), then closes our fd on it. On failure `t` is killed and the start fails at the
 * step `network interfaces`.
 */
function wireInterfaces(
  owned: FdSet,
  t: Template,
  ifaces: NonNullable<RuntimeSpec['interfaces']>,
  netns: { fd: number },
): void {
  try {
    setupNetworkFromHost(ifaces, netns.fd);
  } catch (e) {
    throw new StartStepError(
      'network interfaces',
      cleanupAfter(e, () => kill(t.pid, SIGNALS.SIGKILL!)),
    );
  } finally {
    owned.close(netns.fd);
    netns.fd = -1;
  }
}

/** The failure a start reports for `e`: at its {@link StartStepError} step, else at `fork`. */
function startFailure(e: unknown): InitFailure {
  const step = e instanceof StartStepError ? e.step : 'fork';
  const cause = e instanceof StartStepError ? e.cause : e;
  const msg = cause instanceof Error ? cause.message : String(cause);
  return cause instanceof KernelError
    ? { step, message: msg, kind: 'kernel', syscall: cause.syscall, errnoCode: cause.errnoCode, exitCode: 1 }
    : { step, message: msg, kind: 'other', exitCode: 1 };
}

/**
 * Lets `child`'s init into its cgroups: on cgroup v2 we write its pid to its cgroup.procs
 * files while it makes its mounts (a migration may wait for an RCU grace period); on v1 it
 * joins itself through `tasks` once it reads the ack. One byte on the control pipe: `1`, or `0`
 * when its cgroups could not be made or joined (then it fails).
 */
export function ackCgroups(child: Child, ok: boolean): void {
  const ack = child.cgroupAck;
  if (!ack) return;
  child.cgroupAck = undefined;
  let joined = ok;
  try {
    if (ok) for (const f of ack.procs) writeFileSync(f, String(child.pid));
  } catch {
    // Answered with '0': the init then fails the start at its cgroup step.
    joined = false;
  }
  try {
    writeSync(ack.fd, joined ? '1' : '0');
  } catch {
    // The init is gone: its end is reported as usual.
  }
  // With a terminal, the pipe stays open for the handover of its master.
  if (!ack.terminal) close(ack.fd);
}
