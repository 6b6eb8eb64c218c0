/**
 * The system calls the container init makes, gathered in one object so the init can also run
 * against {@link dryRunSys}: a no-op stand-in used to warm the init up (V8 compiles functions
 * on first call, and a forked child would otherwise compile them anew for every container).
 *
 * @module
 */
import { accessSync, constants as fsConstants, statSync, writeFileSync } from 'node:fs';
import { mount, umount2, pivotRoot, openTree, moveMount, mountSetattr } from '../kernel/mount.js';
import { copyUp } from './copy-up.js';
import { unshare, setns, sethostname, setdomainname } from '../kernel/namespaces.js';
import { open, close, dup2, closeRange, write, read } from '../kernel/fd.js';
import { mkdir, mkdirAll, mknod, symlink, exists, fchown } from '../kernel/fs.js';
import { openPty, setWindowSize, setControllingTerminal, becomeForegroundGroup } from '../kernel/pty.js';
import {
  chdir,
  execve,
  exit,
  prctl,
  setsid,
  setgroups,
  setresgid,
  setresuid,
  capset,
  umask,
  setrlimit,
} from '../kernel/process.js';
import { joinSessionKeyring } from '../kernel/keys.js';
import { setLinkUp } from '../kernel/net.js';
import { seccompSetFilter } from '../kernel/seccomp.js';
import { resetSignals, blockAllSignals, sigwaitinfo } from '../kernel/signals.js';
import { fork, waitpid, kill } from '../kernel/process.js';
import { allowForkOfHeap } from './fork-safety.js';
import { Rtnetlink } from '../kernel/netlink.js';
import { setupInterfacesInContainer } from './net-setup.js';

/** The calls the init makes. */
export interface InitSys {
  mount: typeof mount;
  umount2: typeof umount2;
  pivotRoot: typeof pivotRoot;
  openTree: typeof openTree;
  moveMount: typeof moveMount;
  mountSetattr: typeof mountSetattr;
  copyUp: typeof copyUp;
  unshare: typeof unshare;
  setns: typeof setns;
  writeFile: (path: string, data: string) => void;
  sethostname: typeof sethostname;
  setdomainname: typeof setdomainname;
  open: typeof open;
  close: typeof close;
  dup2: typeof dup2;
  closeRange: typeof closeRange;
  write: typeof write;
  read: typeof read;
  mkdir: typeof mkdir;
  mkdirAll: typeof mkdirAll;
  mknod: typeof mknod;
  symlink: typeof symlink;
  exists: typeof exists;
  isDirectory: (path: string) => boolean;
  /**
   * Whether `path` can be executed by this process: `ok` (a regular file it may execute),
   * `denied` (exists, not executable by it, or not a regular file), or `missing`.
   */
  executable: (path: string) => 'ok' | 'denied' | 'missing';
  chdir: typeof chdir;
  execve: typeof execve;
  exit: typeof exit;
  prctl: typeof prctl;
  setsid: typeof setsid;
  setgroups: typeof setgroups;
  setresgid: typeof setresgid;
  setresuid: typeof setresuid;
  capset: typeof capset;
  setrlimit: typeof setrlimit;
  joinSessionKeyring: typeof joinSessionKeyring;
  umask: typeof umask;
  setLinkUp: typeof setLinkUp;
  resetSignals: typeof resetSignals;
  /** fork(2) of this (already forked) process, its heap made forkable first. */
  fork: () => number;
  waitpid: typeof waitpid;
  kill: typeof kill;
  blockAllSignals: typeof blockAllSignals;
  sigwaitinfo: typeof sigwaitinfo;
  /** A NETLINK_ROUTE socket in the caller's network namespace; returns its fd. */
  openRtnetlink: () => number;
  setupInterfaces: typeof setupInterfacesInContainer;
  openPty: typeof openPty;
  setWindowSize: typeof setWindowSize;
  setControllingTerminal: typeof setControllingTerminal;
  becomeForegroundGroup: typeof becomeForegroundGroup;
  fchown: typeof fchown;
  /** Installs a seccomp filter (a `struct sock_filter` array) on this process. */
  seccomp: (program: Buffer) => void;
}

/** The real calls. */
export const linuxInitSys: InitSys = {
  mount,
  umount2,
  pivotRoot,
  openTree,
  moveMount,
  mountSetattr,
  copyUp,
  unshare,
  setns,
  sethostname,
  setdomainname,
  open,
  close,
  dup2,
  closeRange,
  write,
  read,
  mkdir,
  mkdirAll,
  mknod,
  symlink,
  exists,
  isDirectory: (path) => statSync(path).isDirectory(),
  executable: (path) => {
    try {
      if (!statSync(path).isFile()) return 'denied';
      accessSync(path, fsConstants.X_OK);
      return 'ok';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG'
        ? 'missing'
        : 'denied';
    }
  },
  writeFile: (path, data) => writeFileSync(path, data),
  chdir,
  execve,
  exit,
  prctl,
  setsid,
  setgroups,
  setresgid,
  setresuid,
  capset,
  setrlimit,
  joinSessionKeyring,
  umask,
  setLinkUp,
  resetSignals,
  fork: () => {
    allowForkOfHeap();
    return fork();
  },
  waitpid,
  kill,
  blockAllSignals,
  sigwaitinfo,
  openRtnetlink: () => Rtnetlink.open().socket.fd,
  setupInterfaces: setupInterfacesInContainer,
  openPty,
  setWindowSize,
  setControllingTerminal,
  becomeForegroundGroup,
  fchown,
  seccomp: (program) => seccompSetFilter(program),
};

/** Thrown by {@link dryRunSys}'s execve and exit to end a dry run. */
export class DryRunEnd extends Error {}

const nothing = (): void => undefined;

/** Calls that do nothing (execve and exit end the run by throwing {@link DryRunEnd}). */
export const dryRunSys: InitSys = {
  mount: nothing,
  umount2: nothing,
  pivotRoot: nothing,
  openTree: () => 100,
  moveMount: nothing,
  mountSetattr: nothing,
  copyUp: nothing,
  unshare: nothing,
  setns: nothing,
  writeFile: nothing,
  sethostname: nothing,
  setdomainname: nothing,
  open: () => 100,
  close: nothing,
  dup2: nothing,
  closeRange: nothing,
  write: (_fd, data) => data.length,
  read: () => 0,
  mkdir: nothing,
  mkdirAll: nothing,
  mknod: nothing,
  symlink: nothing,
  exists: () => true,
  isDirectory: () => false,
  executable: () => 'ok',
  chdir: nothing,
  execve: () => {
    throw new DryRunEnd('execve');
  },
  exit: () => {
    throw new DryRunEnd('exit');
  },
  prctl: () => 0,
  setsid: () => 1,
  setgroups: nothing,
  setresgid: nothing,
  setresuid: nothing,
  capset: nothing,
  setrlimit: nothing,
  joinSessionKeyring: () => 1,
  umask: () => 0o022,
  setLinkUp: nothing,
  resetSignals: nothing,
  fork: () => 0,
  waitpid: () => ({ pid: 0, status: 0 }),
  kill: nothing,
  blockAllSignals: nothing,
  sigwaitinfo: () => ({ signal: 17, pid: 0 }),
  openRtnetlink: () => 100,
  setupInterfaces: nothing,
  openPty: () => ({ master: 100, slave: 101, index: 0, path: '/dev/pts/0' }),
  setWindowSize: nothing,
  setControllingTerminal: nothing,
  becomeForegroundGroup: nothing,
  fchown: nothing,
  seccomp: nothing,
};

/**
 * The calls the init makes right now: {@link linuxInitSys}, or {@link dryRunSys} during a
 * warm-up (see {@link useSys}). Read by every part of the JavaScript init (`init.ts`,
 * `init-process.ts`, `init-mounts.ts`, `init-report.ts`).
 */
export let sys: InitSys = linuxInitSys;

/** Makes `next` the calls the init makes (see {@link sys}); returns the ones it replaces. */
export function useSys(next: InitSys): InitSys {
  const saved = sys;
  sys = next;
  return saved;
}
