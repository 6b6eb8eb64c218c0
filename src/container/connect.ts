/**
 * Reaching a running container's network from the engine's process, without publishing a port:
 * a TCP socket made in the namespace of the container's PID 1 (checked by its start time) and
 * connected to `127.0.0.1` there, and whether a port listens there. A container on the host's
 * network reaches the host's loopback; one on `none` its own.
 *
 * @module
 */
import type { Socket } from 'node:net';
import { connectSocket, listensOn, tcpSocketIn, type ConnectSocketOptions } from '../runtime/netns-socket.js';
import { isSameProcess } from '../runtime/host.js';
import { labelOf, type ContainerRecord } from './record.js';
import { stateError } from './status.js';

export type { ConnectSocketOptions } from '../runtime/netns-socket.js';

/**
 * Connects to `127.0.0.1:port` in the network namespace of `rec`'s process (a running container).
 *
 * @throws StateError `NOT_RUNNING` when its process is gone; KernelError `ECONNREFUSED` naming
 * the address when nothing listens there.
 */
export function connectTo(rec: ContainerRecord, port: number, o: ConnectSocketOptions = {}): Promise<Socket> {
  const fd = tcpSocketIn(rec.state.pid, rec.state.startTime);
  if (fd === undefined) return Promise.reject(stateError('connect', 'exited', labelOf(rec)));
  return connectSocket(fd, port, `container ${labelOf(rec)}`, o);
}

/** Whether a TCP socket listens on `port` in the network namespace of `rec`'s process (false once it is gone). */
export function listensIn(rec: ContainerRecord, port: number): boolean {
  // Checked after reading: a table read from a process that reused the pid does not count.
  return listensOn(rec.state.pid, port) && isSameProcess(rec.state.pid, rec.state.startTime);
}
