/**
 * Process bindings: fork, execve, _exit, waitpid, kill, setsid, prctl, madvise, the id calls,
 * pidfds, capabilities and resource limits.
 *
 * prctl, capset and the PR_CAPBSET_* calls act on the calling thread only.
 *
 * @module
 */
import { libc, check, fail, lastErrno } from './libc.js';
import { SYS } from './syscall-numbers.js';
import { _LINUX_CAPABILITY_VERSION_3 } from './constants.js';
import { BerthError } from '../errors.js';

const _fork = libc.func('int fork(void)');
const _execve = libc.func('int execve(const char *path, const char **argv, const char **envp)');
const _exit = libc.func('void _exit(int status)');
const _waitpid = libc.func('int waitpid(int pid, _Out_ int *status, int options)');
const _kill = libc.func('int kill(int pid, int sig)');
const _getpid = libc.func('int getpid(void)');
const _setsid = libc.func('int setsid(void)');
const _prctl = libc.func(
  'int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)',
);
const _madvise = libc.func('int madvise(uintptr_t addr, size_t length, int advice)');
const _setresuid = libc.func('int setresuid(uint32_t r, uint32_t e, uint32_t s)');
const _setresgid = libc.func('int setresgid(uint32_t r, uint32_t e, uint32_t s)');
const _setgroups = libc.func('int setgroups(size_t size, const uint32_t *list)');
const _chdir = libc.func('int chdir(const char *path)');
const _umask = libc.func('uint32_t umask(uint32_t mask)');
const _syscall = libc.func('long syscall(long number, ...)');
const _prlimit = libc.func('int prlimit(int pid, int resource, const uint64_t *newLimit, _Out_ uint64_t *oldLimit)');
const _posixSpawn = libc.func(
  'int posix_spawn(_Out_ int *pid, const char *path, void *fileActions, void *attrp, const char **argv, const char **envp)',
);
const _faInit = libc.func('int posix_spawn_file_actions_init(void *fa)');
const _faDestroy = libc.func('int posix_spawn_file_actions_destroy(void *fa)');
const _faAddDup2 = libc.func('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)');

/**
 * `posix_spawn(3)`: starts `path` in a new process that shares nothing it does not need with
 * this one (glibc uses `clone(CLONE_VM | CLONE_VFORK)`: no copy of this address space, unlike
 * {@link fork}). `dup2` is `[from, to]` pairs applied in the child, in order; `from` must not be
 * any pair's `to`. The child inherits every fd without FD_CLOEXEC, the signal mask and ignored
 * signals. Returns its pid.
 */
export function spawnProgram(
  path: string,
  argv: readonly string[],
  envp: readonly string[],
  dup2: ReadonlyArray<[number, number]>,
): number {
  const fa = Buffer.alloc(256); // posix_spawn_file_actions_t is 80 bytes on glibc
  const r0 = _faInit(fa);
  if (r0 !== 0) fail('posix_spawn_file_actions_init', r0);
  try {
    for (const [from, to] of dup2) {
      const r = _faAddDup2(fa, from, to);
      if (r !== 0) fail('posix_spawn_file_actions_adddup2', r, `${from} -> ${to}`);
    }
    const pid = new Int32Array(1);
    // posix_spawn returns the error number (it does not set errno).
    const r = _posixSpawn(pid, path, fa, null, [...argv, null], [...envp, null]);
    if (r !== 0) fail('posix_spawn', r, path, path);
    return pid[0]!;
  } finally {
    _faDestroy(fa);
  }
}

/**
 * `fork(2)`. Returns 0 in the child and the child's pid in the parent. The child has one thread
 * and must only make synchronous calls before execve(2) or {@link exit}.
 */
export function fork(): number {
  return check('fork', () => _fork());
}

/**
 * `execve(2)`. Returns only on failure, by throwing a {@link KernelError} (ENOENT, EACCES,
 * ENOEXEC …).
 */
export function execve(path: string, argv: readonly string[], envp: readonly string[]): never {
  check('execve', () => _execve(path, [...argv, null], [...envp, null]), path, path);
  throw new BerthError('INTERNAL', 'unreachable: execve returned');
}

/** `_exit(2)`: ends the process at once, with no atexit handlers and no flushing. */
export function exit(status: number): never {
  _exit(status);
  throw new BerthError('INTERNAL', 'unreachable: _exit returned');
}

/** The result of {@link waitpid}: the pid that changed state (0 with WNOHANG and none did) and its raw status. */
export interface WaitResult {
  /** The pid that changed state; 0 when WNOHANG was given and no child had. */
  pid: number;
  /** The raw wait status (see {@link decodeWaitStatus}). */
  status: number;
}

/** `waitpid(2)`. */
export function waitpid(pid: number, options: number): WaitResult {
  const st = [0];
  const r = check('waitpid', () => _waitpid(pid, st, options), `pid=${pid}`);
  return { pid: r, status: st[0]! };
}

/** A decoded wait status: an exit code, or the signal that ended the process. */
export interface ExitStatus {
  /** The exit code; for a signal, 128 + the signal number (as shells and Docker report it). */
  exitCode: number;
  /** The signal that ended the process, when it was one. */
  signal?: number;
}

/** Decodes a raw wait status from {@link waitpid}. */
export function decodeWaitStatus(status: number): ExitStatus {
  const sig = status & 0x7f;
  if (sig === 0) return { exitCode: (status >> 8) & 0xff };
  return { exitCode: 128 + sig, signal: sig };
}

/** `kill(2)`. */
export function kill(pid: number, signal: number): void {
  check('kill', () => _kill(pid, signal), `pid=${pid}, sig=${signal}`);
}

/** `getpid(2)`. */
export function getpid(): number {
  return _getpid();
}

/** `setsid(2)`: a new session and process group led by the caller. */
export function setsid(): number {
  return check('setsid', () => _setsid());
}

/** `prctl(2)` with integer arguments; returns the call's result. */
export function prctl(option: number, a2 = 0, a3 = 0, a4 = 0, a5 = 0): number {
  return check('prctl', () => _prctl(option, a2, a3, a4, a5), `option=${option}`);
}

/** `madvise(2)`. Returns the errno instead of throwing: callers walk ranges with holes. */
export function madvise(addr: bigint, length: bigint, advice: number): number {
  return _madvise(addr, length, advice) === 0 ? 0 : lastErrno();
}

/** `setresuid(2)` (glibc applies it to every thread). */
export function setresuid(r: number, e: number, s: number): void {
  check('setresuid', () => _setresuid(r, e, s), `${r}`);
}

/** `setresgid(2)` (glibc applies it to every thread). */
export function setresgid(r: number, e: number, s: number): void {
  check('setresgid', () => _setresgid(r, e, s), `${r}`);
}

/** `setgroups(2)`: the supplementary group list. */
export function setgroups(gids: readonly number[]): void {
  check('setgroups', () => _setgroups(gids.length, gids.length ? Uint32Array.from(gids) : null), gids.join(','));
}

/** `chdir(2)`. */
export function chdir(path: string): void {
  check('chdir', () => _chdir(path), path, path);
}

/** `umask(2)`; returns the previous mask. */
export function umask(mask: number): number {
  return _umask(mask);
}

/** `pidfd_open(2)`: a file descriptor that refers to process `pid`. */
export function pidfdOpen(pid: number, flags = 0): number {
  return check('pidfd_open', () => Number(_syscall(SYS.pidfd_open, 'int', pid, 'unsigned int', flags)), `pid=${pid}`);
}

/**
 * `pidfd_getfd(2)`: a duplicate, in this process, of file descriptor `targetFd` of the process
 * `pidfd` refers to (close-on-exec). The two share one open file description (offset, flags).
 */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  return check(
    'pidfd_getfd',
    () => Number(_syscall(SYS.pidfd_getfd, 'int', pidfd, 'int', targetFd, 'unsigned int', 0)),
    `fd=${targetFd}`,
  );
}

/** `pidfd_send_signal(2)`: signals the process a pidfd refers to (no pid-reuse race). */
export function pidfdSendSignal(pidfd: number, signal: number): void {
  check(
    'pidfd_send_signal',
    () => Number(_syscall(SYS.pidfd_send_signal, 'int', pidfd, 'int', signal, 'void *', null, 'unsigned int', 0)),
    `sig=${signal}`,
  );
}

/** The three capability sets of a thread, as 64-bit masks. */
export interface CapSets {
  /** Effective set. */
  effective: bigint;
  /** Permitted set. */
  permitted: bigint;
  /** Inheritable set. */
  inheritable: bigint;
}

/** `capset(2)` on the calling thread (version 3 header, 64-bit sets). */
export function capset(sets: CapSets): void {
  const header = new Uint32Array([_LINUX_CAPABILITY_VERSION_3, 0]);
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
  const data = new Uint32Array([
    lo(sets.effective),
    lo(sets.permitted),
    lo(sets.inheritable),
    hi(sets.effective),
    hi(sets.permitted),
    hi(sets.inheritable),
  ]);
  check('capset', () => Number(_syscall(SYS.capset, 'void *', header, 'void *', data)));
}

/** `capget(2)` of the calling thread. */
export function capget(): CapSets {
  const header = new Uint32Array([_LINUX_CAPABILITY_VERSION_3, 0]);
  const data = new Uint32Array(6);
  check('capget', () => Number(_syscall(SYS.capget, 'void *', header, 'void *', data)));
  const join = (l: number, h: number) => (BigInt(h) << 32n) | BigInt(l);
  return {
    effective: join(data[0]!, data[3]!),
    permitted: join(data[1]!, data[4]!),
    inheritable: join(data[2]!, data[5]!),
  };
}

/** A resource limit: the soft (enforced) and hard (ceiling) values; `RLIM_INFINITY` for none. */
export interface ResourceLimit {
  /** The value the kernel enforces. */
  soft: bigint;
  /** The ceiling the soft value may be raised to (raising it needs CAP_SYS_RESOURCE). */
  hard: bigint;
}

/** `prlimit(2)` of this process: its limit of `resource` (an `RLIMIT_*` number). */
export function getrlimit(resource: number): ResourceLimit {
  const old = new BigUint64Array(2);
  check('prlimit', () => _prlimit(0, resource, null, old), `resource=${resource}`);
  return { soft: old[0]!, hard: old[1]! };
}

/** `prlimit(2)` of this process: sets its limit of `resource` (an `RLIMIT_*` number). */
export function setrlimit(resource: number, limit: ResourceLimit): void {
  check(
    'prlimit',
    () => _prlimit(0, resource, BigUint64Array.from([limit.soft, limit.hard]), null),
    `resource=${resource}`,
  );
}
