/**
 * Sealed copies of berth's native programs (`berth-init`, `berth-exec`), which the zygote
 * executes instead of the files themselves, as runc does since CVE-2019-5736.
 *
 * A process started from a file keeps that file as its `/proc/<pid>/exe`. `berth-init` (PID 1 of
 * an `init: true` container, its reaper) and `berth-exec` (inside the container until it execs
 * the program) are seen by the container's processes: with a handle on that link, a process
 * could reopen the host's binary for writing once nothing executes it any more, and every later
 * container would run what it wrote, as root on the host. So each program is copied once per
 * zygote into a memfd (`memfd_create`), sealed against any change (`F_SEAL_WRITE`,
 * `F_SEAL_SHRINK`, `F_SEAL_GROW`, then `F_SEAL_SEAL`), and started through `/proc/self/fd/<n>`:
 * its `/proc/<pid>/exe` is `/memfd:berth-init (deleted)`, a copy no one can write, not the host
 * file. The programs also make themselves non-dumpable first thing (`become_private` in
 * `monitor/sys.h`), so that a container's processes, without CAP_SYS_PTRACE, cannot open that
 * link (nor `mem`, `environ`) at all; execve of the container's program makes it dumpable again.
 *
 * A copy costs the program's size in memory (berth-init ~17 KiB, berth-exec ~6 KiB) once per
 * zygote, made at its first start or exec; a start or exec through it costs no more than through
 * the file (measured: within the noise of ±0.3 ms, see the README of this directory).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { close, dup, fcntl, memfdCreate, write } from '../kernel/fd.js';
import {
  F_ADD_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
} from '../kernel/constants.js';

/** A sealed in-memory copy of a program, open in this process. */
export interface SealedProgram {
  /** Its fd (close-on-exec), numbered {@link SEALED_FD_MIN} or above. */
  readonly fd: number;
  /** The path that executes it (`/proc/self/fd/<fd>`), valid in this process and its children that keep the fd. */
  readonly path: string;
}

/**
 * The lowest fd number a sealed copy gets: above the fixed fds a spawned program's are placed on
 * (3–12), so that placing them in the child never replaces the copy before it is executed.
 */
export const SEALED_FD_MIN = 100;

/** Every seal: the content, the size and the seals themselves are fixed. */
const ALL_SEALS = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

const copies = new Map<string, SealedProgram>();

/**
 * The sealed copy of the program at `file` in this process, made on the first call (its content
 * read once, named `name` in `/proc/<pid>/exe`); later calls for the same file return the same
 * copy.
 */
export function sealedProgram(file: string, name: string): SealedProgram {
  let copy = copies.get(file);
  if (!copy) {
    copy = makeSealedCopy(readFileSync(file), name);
    copies.set(file, copy);
  }
  return copy;
}

/** A sealed memfd holding `content`, named `name` (see {@link sealedProgram}). */
export function makeSealedCopy(content: Buffer, name: string): SealedProgram {
  const mem = memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  let fd: number;
  try {
    write(mem, content);
    fcntl(mem, F_ADD_SEALS, ALL_SEALS);
    fd = dup(mem, SEALED_FD_MIN);
  } finally {
    close(mem);
  }
  return { fd, path: `/proc/self/fd/${fd}` };
}
