/**
 * An exec into a running container: its namespace fds opened from `/proc/<pid>/ns/*`, then
 * `berth-exec` (see `monitor/exec.c`) started by posix_spawn in its PID namespace, or, without
 * it, a fork of the zygote running `runExec` (`init.ts`). Its output goes to the engine.
 *
 * @module
 */
import { statSync } from 'node:fs';
import { open, close } from '../../kernel/fd.js';
import { setns } from '../../kernel/namespaces.js';
import {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  O_CLOEXEC,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
} from '../../kernel/constants.js';
import { BerthError, cleanupAfter, KernelError, StateError } from '../../errors.js';
import { resolveUser } from '../user.js';
import { runExec, type ExecPlan } from '../init.js';
import type { InitFailure, InitFds } from '../init-report.js';
import { processStartTime } from '../proc.js';
import type { ExecRequest } from '../protocol.js';
import { sealedProgram } from '../sealed-program.js';
import { withNativeFds } from '../native-init.js';
import { engineFd, FdSet } from './fds.js';
import { pump, watchExec } from './pump.js';
import type { Child, ZygoteState } from './child.js';

/** An exec's user could not be found in the container's files. */
class UserLookupError extends Error {}

/** The namespaces an exec joins, in order (mount last: it moves the root). */
const EXEC_NAMESPACES: ReadonlyArray<[string, number]> = [
  ['cgroup', CLONE_NEWCGROUP],
  ['ipc', CLONE_NEWIPC],
  ['uts', CLONE_NEWUTS],
  ['net', CLONE_NEWNET],
  ['mnt', CLONE_NEWNS],
];

/**
 * Starts `berth-exec` (see `monitor/exec.c`) in the container's PID namespace with
 * posix_spawn: no copy of this process's address space to make, fault in and tear down, as a
 * fork costs. The user is looked up here, in the container's files seen through
 * `/proc/<pid>/root`. Returns its pid.
 */
function spawnExec(
  z: ZygoteState,
  helper: string,
  plan: ExecPlan,
  ns: Array<[number, number]>,
  pidns: number,
  fds: InitFds & { ctrl: number },
): number {
  const rootFd = open(`/proc/${plan.targetPid}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC);
  let user;
  try {
    user = resolveUser(plan.process.user, rootFd);
  } catch (e) {
    throw new UserLookupError((e as Error).message);
  } finally {
    close(rootFd);
  }
  const proc = plan.process;
  const program = sealedProgram(helper, 'berth-exec');
  const argv = ['berth-exec'];
  for (const f of plan.cgroupProcs) argv.push('--cgroup', f);
  for (const [, type] of ns) argv.push('--ns', String(type));
  argv.push('--uid', String(user.uid), '--gid', String(user.gid), '--groups', user.additionalGids.join(','));
  argv.push('--caps', BigInt(plan.capabilityMask).toString(16), '--cwd', proc.cwd || '/');
  if (proc.noNewPrivileges) argv.push('--nnp');
  if (proc.seccomp) argv.push('--seccomp', proc.seccomp);
  if (proc.terminal) argv.push('--tty', `${proc.terminal.cols}:${proc.terminal.rows}`);
  if (proc.oomScoreAdj !== undefined) argv.push('--oom', String(proc.oomScoreAdj));
  for (const r of proc.rlimits ?? []) argv.push('--rlimit', `${r.resource}:${r.soft}:${r.hard}`);
  argv.push('--', ...proc.args);
  const env = proc.env.some((e) => e.startsWith('HOME=')) ? proc.env : [...proc.env, `HOME=${user.home}`];
  // The fds land on fixed numbers, the namespaces' from 8 on.
  return withNativeFds(
    fds,
    ns.map(([fd]) => fd),
    (placements) => z.spawner.spawnInPidns(pidns, program.path, argv, env, placements),
  );
}

/** Starts a process in a running container's namespaces (see `runExec` in `init.ts`). */
export function exec(z: ZygoteState, req: ExecRequest): void {
  const fds = new FdSet();
  const plan = req.plan;
  try {
    if (processStartTime(plan.targetPid) !== plan.targetStartTime)
      throw new StateError('exited', 'exec', `container process ${plan.targetPid} is not running`, 'NOT_RUNNING');
    const ns: Array<[number, number]> = [];
    for (const [name, type] of EXEC_NAMESPACES) {
      ns.push([fds.add(open(`/proc/${plan.targetPid}/ns/${name}`, O_RDONLY | O_CLOEXEC)), type]);
    }
    // A container in a user namespace of its own (`userns`): joined last, by berth-exec only.
    if (statSync(`/proc/${plan.targetPid}/ns/user`).ino !== z.spawner.ownUserNs) {
      if (!req.helper)
        throw new BerthError(
          'UNSUPPORTED',
          "the JavaScript exec path cannot join a container's user namespace: it needs berth-exec (a C compiler, and not BERTH_NATIVE_EXEC=0)",
        );
      ns.push([fds.add(open(`/proc/${plan.targetPid}/ns/user`, O_RDONLY | O_CLOEXEC)), CLONE_NEWUSER]);
    }
    const pidns = fds.add(open(`/proc/${plan.targetPid}/ns/pid`, O_RDONLY | O_CLOEXEC));
    const [outR, outW] = fds.pipe();
    const [errR, errW] = fds.pipe();
    const [exR, exW] = fds.pipe();
    const [ctrlR, ctrlW] = fds.pipe();
    let stdin = -1;
    // The engine's pipe end, copied from the engine (our parent) into this process.
    if (req.stdinFd !== undefined && !plan.process.terminal) stdin = engineFd(fds, req.stdinFd);
    let pid: number;
    if (req.helper)
      pid = spawnExec(z, req.helper, plan, ns, pidns, { stdin, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR });
    else {
      pid = z.spawner.forkIn(() => setns(pidns, CLONE_NEWPID));
      if (pid === 0) runExec(plan, { fds: ns }, { stdin, stdout: outW, stderr: errW, error: exW, ctrl: ctrlR });
    }
    for (const [fd] of ns) fds.close(fd);
    for (const fd of [pidns, outW, errW, exW, ctrlR, stdin]) fds.close(fd);
    if (!plan.process.terminal) fds.close(ctrlW);
    // The rest goes to the child's record and streams.
    fds.release(outR);
    fds.release(errR);
    fds.release(exR);
    fds.release(ctrlW);
    const child: Child = {
      id: plan.id,
      pid,
      startTime: processStartTime(pid) ?? -1,
      rid: req.rid,
      exitPath: '',
      exec: true,
      openStreams: 2,
      done: false,
      ctrlW: plan.process.terminal ? ctrlW : -1,
      stdinW: -1,
      ttyFd: -1,
      mntNs: -1,
    };
    z.byPid.set(pid, child);
    pump(z, child, outR, 'stdout');
    pump(z, child, errR, 'stderr');
    watchExec(z, child, exR);
  } catch (failure) {
    const e = cleanupAfter(failure, () => fds.closeAll());
    const msg = e instanceof Error ? e.message : String(e);
    const error: InitFailure =
      e instanceof UserLookupError
        ? { step: 'user', message: msg, kind: 'user', exitCode: 1 }
        : { step: 'join', message: msg, kind: e instanceof KernelError ? 'kernel' : 'other', exitCode: 126 };
    z.send({ t: 'failed', rid: req.rid, error });
    // No process was made: report its end at once, so the engine's listener goes away.
    z.send({ t: 'execExit', id: plan.id, status: { pid: 0, exitCode: 126, finishedAt: Date.now(), error } });
  }
}
