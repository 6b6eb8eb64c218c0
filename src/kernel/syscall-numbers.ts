/**
 * Raw syscall numbers for the calls glibc has no wrapper for, per architecture
 * (<asm/unistd_64.h> on x86_64, <asm-generic/unistd.h> on aarch64).
 *
 * @module
 */
import { BerthError } from '../errors.js';

interface SyscallTable {
  pivot_root: number;
  capget: number;
  capset: number;
  open_tree: number;
  move_mount: number;
  pidfd_open: number;
  pidfd_send_signal: number;
  close_range: number;
  openat2: number;
  mount_setattr: number;
  pidfd_getfd: number;
  bpf: number;
  add_key: number;
  keyctl: number;
  seccomp: number;
}

const TABLES: Record<string, SyscallTable> = {
  x64: {
    pivot_root: 155,
    capget: 125,
    capset: 126,
    open_tree: 428,
    move_mount: 429,
    pidfd_open: 434,
    pidfd_send_signal: 424,
    close_range: 436,
    openat2: 437,
    mount_setattr: 442,
    pidfd_getfd: 438,
    seccomp: 317,
    bpf: 321,
    add_key: 248,
    keyctl: 250,
  },
  arm64: {
    pivot_root: 41,
    capget: 90,
    capset: 91,
    open_tree: 428,
    move_mount: 429,
    pidfd_open: 434,
    pidfd_send_signal: 424,
    close_range: 436,
    openat2: 437,
    mount_setattr: 442,
    pidfd_getfd: 438,
    seccomp: 277,
    bpf: 280,
    add_key: 217,
    keyctl: 219,
  },
};

/** The syscall numbers of the architecture this process runs on. */
export const SYS: SyscallTable = (() => {
  const t = TABLES[process.arch];
  if (!t) throw new BerthError('UNSUPPORTED', `berth supports x64 and arm64 Linux, not ${process.arch}`);
  return t;
})();
