/**
 * Minimal network bindings: bring an interface up with the SIOCSIFFLAGS ioctl. (Links,
 * addresses and routes go through rtnetlink elsewhere.)
 *
 * @module
 */
import { libc, check } from './libc.js';
import { AF_INET, IFF_UP, SIOCGIFFLAGS, SIOCSIFFLAGS, SOCK_CLOEXEC, SOCK_DGRAM } from './constants.js';
import { close } from './fd.js';

const _socket = libc.func('int socket(int domain, int type, int protocol)');
const _ioctl = libc.func('int ioctl(int fd, unsigned long request, void *arg)');

/** Size of `struct ifreq` (<net/if.h>): a 16-byte name and a 24-byte union. */
const IFREQ_SIZE = 40;

/** Sets IFF_UP on interface `name` in the caller's network namespace. */
export function setLinkUp(name: string): void {
  const fd = check('socket', () => _socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(name, 0, 15, 'latin1');
    check('ioctl', () => _ioctl(fd, SIOCGIFFLAGS, ifr), `SIOCGIFFLAGS ${name}`);
    ifr.writeUInt16LE(ifr.readUInt16LE(16) | IFF_UP, 16);
    check('ioctl', () => _ioctl(fd, SIOCSIFFLAGS, ifr), `SIOCSIFFLAGS ${name}`);
  } finally {
    close(fd);
  }
}

/** `socket(2)` in the calling thread's network namespace; returns the new fd. */
export function socket(domain: number, type: number, protocol = 0): number {
  return check('socket', () => _socket(domain, type, protocol), `${domain}, 0x${type.toString(16)}`);
}
