/**
 * Entering a network namespace for one synchronous step (a socket keeps the namespace it was
 * opened in), then returning the calling thread to its own.
 *
 * @module
 */
import { CLONE_NEWNET, O_CLOEXEC, O_RDONLY } from '../kernel/constants.js';
import { close, open } from '../kernel/fd.js';
import { setns } from '../kernel/namespaces.js';

/**
 * Runs `fn` with the calling thread in the network namespace `netnsFd` refers to, and returns
 * the thread to its own namespace before returning or throwing. Synchronous on purpose: `setns`
 * acts on the calling thread, and nothing else may run on it in between.
 */
export function withNetns<T>(netnsFd: number, fn: () => T): T {
  const self = open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC);
  try {
    setns(netnsFd, CLONE_NEWNET);
    try {
      return fn();
    } finally {
      setns(self, CLONE_NEWNET);
    }
  } finally {
    close(self);
  }
}
