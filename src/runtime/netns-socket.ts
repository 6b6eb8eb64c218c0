/**
 * Sockets in a container's network namespace, from the engine's process: a TCP socket made there
 * (with `setns(2)` on the calling thread, and back) and connected to the container's loopback, and
 * the TCP ports a container's namespace listens on (`/proc/<pid>/net/tcp` and `tcp6`). No host
 * address and no published port is involved: only this process holds the socket. No Docker policy.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { KernelError, TimeoutError } from '../errors.js';
import { AF_INET, O_CLOEXEC, O_RDONLY, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from '../kernel/constants.js';
import { close, open } from '../kernel/fd.js';
import { socket } from '../kernel/net.js';
import { isSameProcess } from './proc.js';
import { withNetns } from './netns.js';

/**
 * A new non-blocking, close-on-exec TCP (IPv4) socket made in the network namespace of process
 * `pid`, if it is still the process that started at `startTime`; `undefined` when it is gone.
 * A socket keeps the namespace it was made in: connecting it reaches that namespace's addresses.
 */
export function tcpSocketIn(pid: number, startTime: number): number | undefined {
  let ns: number;
  try {
    ns = open(`/proc/${pid}/ns/net`, O_RDONLY | O_CLOEXEC);
  } catch {
    return undefined; // exited
  }
  try {
    // Checked after opening: the namespace fd cannot then belong to a process that reused the pid.
    if (!isSameProcess(pid, startTime)) return undefined;
    return withNetns(ns, () => socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC));
  } finally {
    close(ns);
  }
}

/** Options of {@link connectSocket}. */
export interface ConnectSocketOptions {
  /** Gives up (destroying the socket) when aborted; rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Gives up after this many ms with a `TIMEOUT` error. */
  timeout?: number | undefined;
}

/**
 * Connects the unconnected TCP socket `fd` (which it takes over, also on failure) to
 * `127.0.0.1:port` of the namespace it was made in. `label` names that place in errors.
 *
 * @throws KernelError `ECONNREFUSED` (and the like) naming the address; TimeoutError.
 */
export function connectSocket(fd: number, port: number, label: string, o: ConnectSocketOptions = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let s: Socket;
    try {
      s = new Socket({ fd });
    } catch (e) {
      close(fd);
      reject(e);
      return;
    }
    const address = `127.0.0.1:${port}`;
    const timer =
      o.timeout === undefined
        ? undefined
        : setTimeout(
            () => done(new TimeoutError(`connecting to ${address} in ${label} took over ${o.timeout} ms`)),
            o.timeout,
          );
    const onAbort = () => done(o.signal?.reason as Error);
    const onError = (e: NodeJS.ErrnoException) =>
      done(
        e.code && typeof e.errno === 'number'
          ? new KernelError('connect', Math.abs(e.errno), e.code, `${address} in ${label}`, undefined, { cause: e })
          : e,
      );
    function done(err?: Error): void {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      s.off('error', onError);
      if (err === undefined) return resolve(s);
      s.destroy();
      reject(err);
    }
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    s.once('error', onError);
    s.connect(port, '127.0.0.1', () => done());
  });
}

/** TCP state `LISTEN` in `/proc/net/tcp`. */
const TCP_LISTEN = '0A';

/** The ports in state LISTEN of a `/proc/net/tcp` or `tcp6` table (`local_address` is `ADDR:PORT` in hex). */
export function listeningPorts(table: string): Set<number> {
  const ports = new Set<number>();
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] !== TCP_LISTEN || f[1] === undefined) continue;
    ports.add(parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16));
  }
  return ports;
}

/** Whether a TCP socket listens on `port` in the network namespace of process `pid` (false when it is gone). */
export function listensOn(pid: number, port: number): boolean {
  for (const file of ['tcp', 'tcp6']) {
    let table: string;
    try {
      table = readFileSync(`/proc/${pid}/net/${file}`, 'latin1');
    } catch {
      continue; // gone, or no IPv6
    }
    if (listeningPorts(table).has(port)) return true;
  }
  return false;
}
