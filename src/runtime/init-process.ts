/**
 * The process steps of the JavaScript init and exec, after the mounts: stdio (and the terminal
 * handover), limits, privileges, seccomp, the PATH lookup and execve, and the `init: true` reaper.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import * as K from '../kernel/constants.js';
import { ignoredSignals } from '../kernel/signals.js';
import { BerthError, KernelError } from '../errors.js';
import { sys } from './init-sys.js';
import { commandFailure, execFailure, EXEC_MARKER, TERMINAL_MARKER, type InitFds } from './init-report.js';
import type { Plan, RuntimeSpec } from './plan.js';
import type { ResolvedUser } from './user.js';

/** Signals this process ignores (Node ignores SIGPIPE): reset before execve, or the program inherits them. */
export const IGNORED_SIGNALS = ignoredSignals();

/** The highest capability number this kernel knows. */
const CAP_LAST = (() => {
  try {
    return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'latin1').trim());
  } catch {
    // No /proc yet: 40 (CAP_CHECKPOINT_RESTORE), the last one since Linux 5.9.
    return 40;
  }
})();

/** Reads exactly `n` bytes (blocking); undefined at end of file. */
export function readExactly(fd: number, n: number): Buffer | undefined {
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  while (off < n) {
    const got = sys.read(fd, out.subarray(off));
    if (got === 0) return undefined;
    off += got;
  }
  return out;
}

/**
 * Wires fds 0–2: a new terminal (see {@link TERMINAL_MARKER}), or the given pipes with stdin
 * from `fds.stdin` or /dev/null. `console`: also bind the terminal onto /dev/console.
 */
export function setUpStdio(
  proc: Plan['spec']['process'],
  fds: InitFds,
  ctrlFd: number,
  user: ResolvedUser,
  console: boolean,
): void {
  if (!proc.terminal) {
    sys.dup2(fds.stdin >= 0 ? fds.stdin : sys.open('/dev/null', K.O_RDONLY | K.O_CLOEXEC), 0);
    sys.dup2(fds.stdout, 1);
    sys.dup2(fds.stderr, 2);
    return;
  }
  if (ctrlFd < 0) throw new BerthError('INTERNAL', 'a terminal needs a control pipe');
  const pty = sys.openPty({ ptmx: '/dev/pts/ptmx' });
  // The program's own terminal, as a login would make it: owned by its user.
  sys.fchown(pty.slave, user.uid, 0xffffffff); // gid -1: unchanged (tty)
  sys.setWindowSize(pty.slave, proc.terminal);
  if (console) sys.mount(`/dev/pts/${pty.index}`, '/dev/console', null, K.MS_BIND, null);
  for (const fd of [0, 1, 2]) sys.dup2(pty.slave, fd);
  sys.close(pty.slave);
  // This process leads its session (setsid at the start): the terminal becomes its controlling one.
  sys.setControllingTerminal(0);
  sys.write(fds.error, `${TERMINAL_MARKER}${pty.master}\n`);
  const ack = readExactly(ctrlFd, 1);
  sys.close(ctrlFd);
  sys.close(pty.master);
  if (!ack) throw new BerthError('INTERNAL', 'the runtime did not take the terminal');
}

/**
 * PID 1 with `init: true`: forwards every signal it gets to the program, reaps every child
 * (orphans are reparented to it), and exits with the program's status (128 + n for a signal),
 * as tini does. Never returns.
 */
export function reap(main: number, errorFd: number): never {
  // The program reports its own exec; holding the pipe here would hide that it closed.
  sys.close(errorFd);
  sys.blockAllSignals();
  for (;;) {
    const { signal } = sys.sigwaitinfo();
    if (signal !== K.SIGNALS.SIGCHLD) {
      try {
        sys.kill(main, signal);
      } catch {
        // The program is gone; its SIGCHLD is on the way.
      }
      continue;
    }
    for (;;) {
      let r;
      try {
        r = sys.waitpid(-1, K.WNOHANG);
      } catch {
        // ECHILD: no child left, the program among them; the reaper's work is done.
        sys.exit(0);
      }
      if (r.pid <= 0) break;
      if (r.pid === main) {
        const sig = r.status & 0x7f;
        sys.exit(sig ? 128 + sig : (r.status >> 8) & 0xff);
      }
    }
  }
}

/**
 * oom_score_adj and the resource limits of the process (its children inherit both), before the
 * user changes, as runc sets them (RLIMIT_NPROC counts at setuid); oom_score_adj first, as a
 * RLIMIT_NOFILE of 0 would keep its file from opening. Then a new, empty session keyring, as runc
 * gives each container: the one inherited from the zygote is the engine's, with its keys.
 * `setStep` names the step under way (for a failure).
 */
export function applyLimits(proc: RuntimeSpec['process'], setStep: (step: string) => void): void {
  if (proc.oomScoreAdj !== undefined) {
    setStep('oom_score_adj');
    sys.writeFile('/proc/self/oom_score_adj', String(proc.oomScoreAdj));
  }
  setStep('rlimits');
  const value = (v: number) => (v < 0 ? K.RLIM_INFINITY : BigInt(v));
  for (const r of proc.rlimits ?? []) sys.setrlimit(r.resource, { soft: value(r.soft), hard: value(r.hard) });
  setStep('keyring');
  try {
    sys.joinSessionKeyring();
  } catch (e) {
    // A kernel without keys: there is no keyring to reach.
    if (!(e instanceof KernelError && e.errnoCode === 'ENOSYS')) throw e;
  }
}

/**
 * Drops to `user` keeping the plan's capability mask (bounding set, no ambient or inheritable
 * one), then no_new_privs when asked.
 */
export function dropPrivileges(
  plan: Pick<Plan, 'capabilityMask'> & { spec: { process: { noNewPrivileges: boolean } } },
  user: ResolvedUser,
): void {
  const mask = BigInt(plan.capabilityMask);
  for (let cap = 0; cap <= CAP_LAST; cap++) {
    if (!(mask & (1n << BigInt(cap)))) sys.prctl(K.PR_CAPBSET_DROP, cap);
  }
  sys.prctl(K.PR_CAP_AMBIENT, K.PR_CAP_AMBIENT_CLEAR_ALL);
  sys.setgroups(user.additionalGids);
  sys.setresgid(user.gid, user.gid, user.gid);
  sys.setresuid(user.uid, user.uid, user.uid);
  // A non-zero uid has lost every capability in setresuid; root keeps exactly the mask. Nobody
  // keeps an inheritable one (nor so an ambient one), as Docker since CVE-2022-24769.
  const keep = user.uid === 0 ? mask : 0n;
  sys.capset({ effective: keep, permitted: keep, inheritable: 0n });
  if (plan.spec.process.noNewPrivileges) sys.prctl(K.PR_SET_NO_NEW_PRIVS, 1);
}

/**
 * Installs the process's seccomp filter at the right moment, as runc orders it: without
 * no_new_privs the kernel wants CAP_SYS_ADMIN for it, so it goes in `before` the capabilities are
 * dropped (the calls that drop them must then pass the filter); with no_new_privs, `after`
 * everything but the exec, so that as few calls as possible run under it.
 */
export function loadSeccomp(proc: RuntimeSpec['process'], phase: 'before' | 'after'): void {
  if (!proc.seccomp || (phase === 'before') === proc.noNewPrivileges) return;
  sys.seccomp(Buffer.from(proc.seccomp, 'hex'));
}

/** `env` with `HOME` of `user` added when it has none. */
export function withHome(env: string[], user: ResolvedUser): string[] {
  return env.some((e) => e.startsWith('HOME=')) ? env : [...env, `HOME=${user.home}`];
}

/**
 * execve with execvp(3)'s PATH search, using the container's PATH (not the zygote's). The
 * program is looked up first (an executable regular file, checked with access(2) as the
 * process's own user): a missing or unusable command fails before {@link EXEC_MARKER} is
 * written, so the start fails. Then the marker, then one execve: the zygote reports the start
 * at the marker, as runc does (its start returns before the init's execve), without waiting for
 * the kernel to tear down this process's copy of the zygote's address space. An execve that
 * still fails (a bad binary format) is reported after the marker and ends the process.
 */
export function execProgram(args: string[], env: string[], errorFd: number): never {
  const file = args[0];
  if (!file) throw commandFailure('', 'no command specified', 127);
  let path: string | undefined;
  let denied: unknown;
  const candidates = file.includes('/')
    ? [file]
    : (
        env.find((e) => e.startsWith('PATH='))?.slice(5) ??
        '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
      )
        .split(':')
        .map((dir) => `${dir || '.'}/${file}`);
  for (const candidate of candidates) {
    const r = sys.executable(candidate);
    if (r === 'ok') {
      path = candidate;
      break;
    }
    if (r === 'denied') denied ??= new KernelError('execve', 13, 'EACCES', candidate);
  }
  if (path === undefined) throw execFailure(file, denied, !file.includes('/'));
  sys.write(errorFd, EXEC_MARKER);
  try {
    sys.execve(path, args, env);
  } catch (e) {
    throw execFailure(file, e, false);
  }
}
