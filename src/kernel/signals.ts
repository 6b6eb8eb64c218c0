/**
 * Signal-disposition bindings. A forked child of a Node process inherits Node's ignored
 * signals (SIGPIPE is ignored by Node) and those survive execve(2); {@link resetSignals} puts
 * every signal back to its default and unblocks all of them.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { libc, check } from './libc.js';

const _signal = libc.func('void *signal(int sig, void *handler)');
const _sigprocmask = libc.func('int sigprocmask(int how, const void *set, void *oldset)');

/** <signal.h>: SIG_SETMASK. */
const SIG_SETMASK = 2;

const EMPTY_SET = Buffer.alloc(128);
const FULL_SET = Buffer.alloc(128, 0xff);
const _sigwaitinfo = libc.func('int sigwaitinfo(const void *set, void *info)');

/** <signal.h>: SIG_BLOCK. */
const SIG_BLOCK = 0;

/** Blocks every signal for the calling thread (to receive them with {@link sigwaitinfo}). */
export function blockAllSignals(): void {
  check('sigprocmask', () => _sigprocmask(SIG_BLOCK, FULL_SET, null));
}

/**
 * `sigwaitinfo(2)` over every signal: blocks until one is pending and returns its number and
 * the pid that sent it (0 when the kernel did). Retries on EINTR.
 */
export function sigwaitinfo(): { signal: number; pid: number } {
  const info = Buffer.alloc(128);
  const sig = check('sigwaitinfo', () => _sigwaitinfo(FULL_SET, info));
  // siginfo_t: si_signo, si_errno, si_code (ints), then si_pid at offset 16 on 64-bit Linux.
  return { signal: sig, pid: info.readInt32LE(16) };
}

/**
 * Resets `signals` (default: every catchable one) to SIG_DFL and clears the signal mask of the
 * calling thread. Caught signals are reset by execve(2) anyway: only ignored ones need it.
 */
export function resetSignals(signals?: readonly number[]): void {
  for (let sig = 1; sig < 65; sig++) {
    if (sig === 9 || sig === 19 || sig === 32 || sig === 33) continue;
    if (signals && !signals.includes(sig)) continue;
    _signal(sig, null);
  }
  check('sigprocmask', () => _sigprocmask(SIG_SETMASK, EMPTY_SET, null));
}

/** Runs `fn` with `signals` blocked for the calling thread, then restores its signal mask. */
export function withSignalsBlocked<T>(signals: readonly number[], fn: () => T): T {
  const set = Buffer.alloc(128);
  for (const sig of signals) set[(sig - 1) >> 3]! |= 1 << ((sig - 1) & 7);
  const old = Buffer.alloc(128);
  check('sigprocmask', () => _sigprocmask(SIG_BLOCK, set, old));
  try {
    return fn();
  } finally {
    _sigprocmask(SIG_SETMASK, old, null);
  }
}

/** The signals this process ignores (SigIgn in /proc/self/status). */
export function ignoredSignals(): number[] {
  const m = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
  const mask = BigInt(`0x${m?.[1] ?? '0'}`);
  const out: number[] = [];
  for (let sig = 1; sig < 65; sig++) if (mask & (1n << BigInt(sig - 1))) out.push(sig);
  return out;
}
