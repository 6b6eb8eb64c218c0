/**
 * Pseudo-terminal bindings: open a master on a devpts instance's `ptmx`, unlock it, open its
 * slave straight from the master (`TIOCGPTPEER`, no path lookup), window sizes and the
 * controlling terminal. The ioctl numbers are the generic ones, shared by x86_64 and aarch64.
 *
 * @module
 */
import { libc, check } from './libc.js';
import { close, open } from './fd.js';
import { O_CLOEXEC, O_NOCTTY, O_RDWR } from './constants.js';

const _ioctlInt = libc.func('ioctl', 'int', ['int', 'unsigned long', 'int *']);
const _ioctlPtr = libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
const _ioctlVal = libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']);

/** Lock or unlock a pty slave (`int *`). */
export const TIOCSPTLCK = 0x40045431;
/** The pty number of a master (`unsigned int *`). */
export const TIOCGPTN = 0x80045430;
/** Opens the slave of a master; the argument is the open flags. */
export const TIOCGPTPEER = 0x5441;
/** Sets the window size (`struct winsize *`). */
export const TIOCSWINSZ = 0x5414;
/** Gets the window size (`struct winsize *`). */
export const TIOCGWINSZ = 0x5413;
/** Makes a terminal the caller's controlling terminal (the caller leads a session). */
export const TIOCSCTTY = 0x540e;

/** A terminal's size in characters. */
export interface WindowSize {
  /** Columns. */
  cols: number;
  /** Rows. */
  rows: number;
}

/** An open pseudo-terminal pair. */
export interface PtyPair {
  /** The master: what the outside reads output from and writes input to. */
  master: number;
  /** The slave: the program's terminal. */
  slave: number;
  /** The slave's number in its devpts instance (`/dev/pts/N`). */
  index: number;
}

/**
 * Opens a new pty on the devpts instance of `ptmxPath` (`/dev/pts/ptmx` inside a container):
 * both ends close-on-exec, neither becomes the caller's controlling terminal.
 */
export function openPty(ptmxPath = '/dev/ptmx'): PtyPair {
  const master = open(ptmxPath, O_RDWR | O_NOCTTY | O_CLOEXEC);
  try {
    check('ioctl', () => _ioctlInt(master, TIOCSPTLCK, new Int32Array([0])), 'TIOCSPTLCK', ptmxPath);
    const n = new Int32Array(1);
    check('ioctl', () => _ioctlInt(master, TIOCGPTN, n), 'TIOCGPTN', ptmxPath);
    const slave = check('ioctl', () => _ioctlVal(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC), 'TIOCGPTPEER', ptmxPath);
    return { master, slave, index: n[0]! };
  } catch (e) {
    close(master);
    throw e;
  }
}

/** Sets the window size of a terminal (either end of a pty); the foreground job gets SIGWINCH. */
export function setWindowSize(fd: number, size: WindowSize): void {
  const ws = new Uint16Array([size.rows, size.cols, 0, 0]);
  check('ioctl', () => _ioctlPtr(fd, TIOCSWINSZ, ws), `TIOCSWINSZ fd=${fd}`);
}

/** The window size of a terminal. */
export function getWindowSize(fd: number): WindowSize {
  const ws = new Uint16Array(4);
  check('ioctl', () => _ioctlPtr(fd, TIOCGWINSZ, ws), `TIOCGWINSZ fd=${fd}`);
  return { rows: ws[0]!, cols: ws[1]! };
}

/** Makes terminal `fd` the controlling terminal of the caller's session (the caller must lead it). */
export function setControllingTerminal(fd: number): void {
  check('ioctl', () => _ioctlVal(fd, TIOCSCTTY, 0), `TIOCSCTTY fd=${fd}`);
}
