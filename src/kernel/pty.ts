/**
 * Pseudo-terminals (`pty(7)`): open a pair on a devpts instance's `ptmx` (as `posix_openpt`,
 * `unlockpt` and `ptsname` do, but opening the slave straight from the master with
 * `TIOCGPTPEER`, with no path lookup), set and read the window size, make a terminal the
 * controlling one. The ioctl numbers are those of <asm-generic/ioctls.h>, the same on x86_64
 * and aarch64.
 *
 * @module
 */
import { libc, check } from './libc.js';
import { cleanupAfter } from '../errors.js';
import { close, open } from './fd.js';
import { getpid } from './process.js';
import { withSignalsBlocked } from './signals.js';
import { O_CLOEXEC, O_NOCTTY, O_RDWR } from './constants.js';

const _ioctlPtr = libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
const _ioctlVal = libc.func('ioctl', 'int', ['int', 'unsigned long', 'uintptr_t']);
const _setpgid = libc.func('int setpgid(int pid, int pgid)');

/** Lock or unlock the slave side: `_IOW('T', 0x31, int)`. */
const TIOCSPTLCK = 0x40045431;
/** The pty number, N in `/dev/pts/N`: `_IOR('T', 0x30, unsigned int)`. */
const TIOCGPTN = 0x80045430;
/** Opens the slave of a master; the argument is the open flags. */
const TIOCGPTPEER = 0x5441;
/** Read the window size (struct winsize). */
const TIOCGWINSZ = 0x5413;
/** Set the window size (struct winsize). */
const TIOCSWINSZ = 0x5414;
/** Make the terminal the caller's controlling terminal. */
const TIOCSCTTY = 0x540e;
/** Set the terminal's foreground process group (`pid_t *`). */
const TIOCSPGRP = 0x5410;

/** A terminal's window size (`struct winsize`). */
export interface WindowSize {
  /** Rows, in characters. */
  rows: number;
  /** Columns, in characters. */
  cols: number;
  /** Width in pixels (unused by most programs; 0 when unknown). */
  xpixel?: number;
  /** Height in pixels (unused by most programs; 0 when unknown). */
  ypixel?: number;
}

/** Both ends of a pseudo-terminal. Close both with {@link close} when done. */
export interface PtyPair {
  /** The master side: what the program writes to the slave is read here, and vice versa. */
  master: number;
  /** The slave side: the program's terminal. */
  slave: number;
  /** The slave's number in its devpts instance. */
  index: number;
  /** The slave's path where that instance is mounted on /dev/pts, e.g. `/dev/pts/3`. */
  path: string;
}

/**
 * `openpty(3)` on the devpts instance of `ptmx` (default `/dev/ptmx`; `/dev/pts/ptmx` inside a
 * container): a new pair, both ends O_CLOEXEC and O_NOCTTY (neither becomes the caller's
 * controlling terminal), with the window size set when `size` is given.
 */
export function openPty(options: { ptmx?: string; size?: WindowSize } = {}): PtyPair {
  const ptmx = options.ptmx ?? '/dev/ptmx';
  const master = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
  let slave = -1;
  try {
    check('ioctl', () => _ioctlPtr(master, TIOCSPTLCK, Buffer.alloc(4)), `TIOCSPTLCK fd=${master}`, ptmx);
    const n = Buffer.alloc(4);
    check('ioctl', () => _ioctlPtr(master, TIOCGPTN, n), `TIOCGPTN fd=${master}`, ptmx);
    slave = check(
      'ioctl',
      () => _ioctlVal(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC),
      `TIOCGPTPEER fd=${master}`,
      ptmx,
    );
    if (options.size) setWindowSize(slave, options.size);
    const index = n.readUInt32LE(0);
    return { master, slave, index, path: `/dev/pts/${index}` };
  } catch (e) {
    throw cleanupAfter(
      e,
      () => slave >= 0 && close(slave),
      () => close(master),
    );
  }
}

/** Sets the window size of the terminal `fd` (either side of a pty): ioctl TIOCSWINSZ. */
export function setWindowSize(fd: number, size: WindowSize): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(size.rows, 0);
  ws.writeUInt16LE(size.cols, 2);
  ws.writeUInt16LE(size.xpixel ?? 0, 4);
  ws.writeUInt16LE(size.ypixel ?? 0, 6);
  check('ioctl', () => _ioctlPtr(fd, TIOCSWINSZ, ws), `TIOCSWINSZ fd=${fd}`);
}

/** Reads the window size of the terminal `fd`: ioctl TIOCGWINSZ. */
export function getWindowSize(fd: number): WindowSize {
  const ws = Buffer.alloc(8);
  check('ioctl', () => _ioctlPtr(fd, TIOCGWINSZ, ws), `TIOCGWINSZ fd=${fd}`);
  return { rows: ws.readUInt16LE(0), cols: ws.readUInt16LE(2), xpixel: ws.readUInt16LE(4), ypixel: ws.readUInt16LE(6) };
}

/**
 * Makes the terminal `fd` the calling process's controlling terminal (ioctl TIOCSCTTY). The
 * caller must be a session leader without one (call it after `setsid()`, e.g. in a forked child);
 * `steal` takes the terminal from another session (needs CAP_SYS_ADMIN).
 */
export function setControllingTerminal(fd: number, steal = false): void {
  check('ioctl', () => _ioctlVal(fd, TIOCSCTTY, steal ? 1 : 0), `TIOCSCTTY fd=${fd}`);
}

/**
 * Puts the caller in a process group of its own and makes that group the foreground one of
 * terminal `fd` (its session's controlling terminal), as a shell does for a job: the keys that
 * send signals (Ctrl-C, Ctrl-Z) then reach this group only. SIGTTOU, which the kernel
 * sends a background group that changes the foreground, is blocked meanwhile.
 */
export function becomeForegroundGroup(fd: number): void {
  check('setpgid', () => _setpgid(0, 0));
  withSignalsBlocked([22 /* SIGTTOU */], () => {
    check('ioctl', () => _ioctlPtr(fd, TIOCSPGRP, new Int32Array([getpid()])), `TIOCSPGRP fd=${fd}`);
  });
}
