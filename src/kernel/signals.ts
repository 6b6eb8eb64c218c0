/**
 * Signal-disposition bindings. A forked child of a Node process inherits Node's ignored
 * signals (SIGPIPE is ignored by Node) and those survive execve(2); {@link resetSignals} puts
 * every signal back to its default and unblocks all of them.
 *
 * @module
 */
import { libc, check } from './libc.js';

const _signal = libc.func('void *signal(int sig, void *handler)');
const _sigprocmask = libc.func('int sigprocmask(int how, const void *set, void *oldset)');

/** <signal.h>: SIG_SETMASK. */
const SIG_SETMASK = 2;

/** Resets every catchable signal to SIG_DFL and clears the signal mask of the calling thread. */
export function resetSignals(): void {
  for (let sig = 1; sig < 65; sig++) {
    if (sig === 9 || sig === 19 || sig === 32 || sig === 33) continue;
    _signal(sig, null);
  }
  check('sigprocmask', () => _sigprocmask(SIG_SETMASK, Buffer.alloc(128), null));
}
