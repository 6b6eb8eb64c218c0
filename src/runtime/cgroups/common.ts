/**
 * Helpers shared by the cgroup drivers: id checks, error wrapping, polling, and parsers for the
 * kernel's `key value` files.
 *
 * @module
 */
import { constants } from 'node:os';
import { InvalidArgumentError, KernelError, TimeoutError } from '../../errors.js';
import type { CgroupFs } from './cgroup-fs.js';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Throws `InvalidArgumentError` unless `id` can name a cgroup directory. */
export function checkId(id: string): void {
  if (!ID_RE.test(id) || id.length > 255) throw new InvalidArgumentError('id', `'${id}' cannot name a cgroup`);
}

/** Checks the parent option: relative segments, each a plain name. */
export function checkParent(parent: string): string {
  const parts = parent.split('/').filter(Boolean);
  if (parts.length === 0 || parts.some((p) => !ID_RE.test(p))) {
    throw new InvalidArgumentError('parent', `'${parent}' is not a relative cgroup path`);
  }
  return parts.join('/');
}

/** The Node-style error code of a thrown value, if any. */
export function errCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Wraps a file-operation failure in a `KernelError` naming the call and the path. */
export function kernelError(syscall: string, path: string, e: unknown, detail?: string): KernelError {
  const code = errCode(e) ?? 'EIO';
  const errno = (constants.errno as Record<string, number | undefined>)[code] ?? 0;
  return new KernelError(syscall, errno, code, detail ?? path, path, { cause: e });
}

/** Reads an interface file, wrapping failures; `undefined` when it does not exist. */
export async function readOptional(fs: CgroupFs, path: string): Promise<string | undefined> {
  try {
    return await fs.read(path);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return undefined;
    throw kernelError('read', path, e);
  }
}

/** Writes an interface file, wrapping a failure in a `KernelError` that names file and value. */
export async function writeFile(fs: CgroupFs, path: string, value: string): Promise<void> {
  try {
    await fs.write(path, value);
  } catch (e) {
    throw kernelError('write', path, e, `${path} <- ${JSON.stringify(value)}`);
  }
}

/** Parses `key value` lines (`memory.stat`, `cpu.stat`, `cgroup.events`, …) into numbers. */
export function parseKeyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^-?\d+$/.test(value)) out.set(key, Number(value));
  }
  return out;
}

/** A number from a single-value file; `undefined` for `max`, an absent file or garbage. */
export function parseNumber(text: string | undefined): number | undefined {
  const t = text?.trim();
  return t && /^-?\d+$/.test(t) ? Number(t) : undefined;
}

/** Pids listed in a `cgroup.procs` text. */
export function parsePids(text: string | undefined): number[] {
  return (text ?? '')
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()))
    .map(Number);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls `check` every `pollMs` until it resolves `true`; throws `TimeoutError` with `what` after
 * `timeoutMs`. `onRetry` runs between attempts (e.g. to write a request again).
 */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs: number,
  pollMs: number,
  onRetry?: (attempt: number) => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new TimeoutError(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(pollMs);
    await onRetry?.(attempt);
  }
}

/**
 * Removes `dir` and its child cgroups (deepest first), calling `beforeEach` on a directory before
 * each attempt (to kill what runs there), and retrying on `EBUSY` until `timeoutMs` has passed.
 * A directory that is already gone is not an error.
 */
export async function removeTree(
  fs: CgroupFs,
  dir: string,
  beforeEach: (dir: string) => Promise<void>,
  timeoutMs: number,
  pollMs: number,
): Promise<void> {
  let children: string[];
  try {
    children = await fs.subdirs(dir);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return;
    throw kernelError('readdir', dir, e);
  }
  for (const c of children) await removeTree(fs, `${dir}/${c}`, beforeEach, timeoutMs, pollMs);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await beforeEach(dir);
    try {
      await fs.rmdir(dir);
      return;
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() >= deadline) throw kernelError('rmdir', dir, e);
    }
    await sleep(pollMs);
  }
}

/** Sends SIGKILL through `kill`, ignoring a process that is already gone. */
export function killQuietly(kill: (pid: number, signal: 'SIGKILL') => void, pid: number): void {
  try {
    kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** {@link removeTree} that kills whatever is left in each directory (its `cgroup.procs`) before each attempt. */
export function removeCgroupTree(
  fs: CgroupFs,
  dir: string,
  kill: (pid: number, signal: 'SIGKILL') => void,
  timeoutMs: number,
  pollMs: number,
): Promise<void> {
  return removeTree(
    fs,
    dir,
    async (d) => {
      // Unreadable procs: nothing to kill from here, and the rmdir's EBUSY then reports the cgroup.
      for (const pid of parsePids(await readOptional(fs, `${d}/cgroup.procs`).catch(() => ''))) killQuietly(kill, pid);
    },
    timeoutMs,
    pollMs,
  );
}
