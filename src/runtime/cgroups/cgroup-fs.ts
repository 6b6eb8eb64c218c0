/**
 * The file operations a cgroup driver makes, as a seam: {@link nodeCgroupFs} works on a real
 * cgroupfs (or, with `tree: true`, on an ordinary directory laid out like one); tests can also
 * pass their own to play the kernel's part (freezing, killing).
 *
 * Failures are thrown as errors carrying a Node-style `code` (`ENOENT`, `EBUSY`, …): the drivers
 * switch on that code and wrap the error once, with the path, in a `KernelError`.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** File operations on a cgroup hierarchy. Every path is absolute. */
export interface CgroupFs {
  /** The whole content of an interface file. */
  read(path: string): Promise<string>;
  /** Writes `data` to an interface file in one write. Never creates a file on a real cgroupfs. */
  write(path: string, data: string): Promise<void>;
  /** Makes a directory; resolves `false` when it already existed. */
  mkdir(path: string): Promise<boolean>;
  /** Removes a cgroup directory (which must have no child cgroup and no process). */
  rmdir(path: string): Promise<void>;
  /** Names of the child directories (child cgroups) of `path`. */
  subdirs(path: string): Promise<string[]>;
  /** Whether `path` exists. */
  exists(path: string): Promise<boolean>;
}

/** Options of {@link nodeCgroupFs}. */
export interface NodeCgroupFsOptions {
  /**
   * Work on an ordinary directory laid out like cgroupfs: writes create missing files, and
   * `rmdir` removes a directory's files first (it still refuses one with child directories,
   * with `EBUSY`, as the kernel does). Default `false`.
   */
  tree?: boolean;
}

/** A {@link CgroupFs} on Node's `fs`. */
export function nodeCgroupFs(options: NodeCgroupFsOptions = {}): CgroupFs {
  const tree = options.tree === true;
  // Synchronous calls on purpose: cgroup files are tiny kernel pseudo-files, and a trip through
  // libuv's thread pool costs more than the call itself (measured: ~4 ms per container create).
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => R) =>
    async (...a: A): Promise<R> =>
      fn(...a);
  return {
    read: wrap((path: string) => readFileSync(path, 'utf8')),
    write: wrap((path: string, data: string) => writeFileSync(path, data, { flag: tree ? 'w' : 'r+' })),
    mkdir: wrap((path: string) => {
      try {
        mkdirSync(path, { mode: 0o755 });
        return true;
      } catch (e) {
        if ((e as { code?: string }).code === 'EEXIST') return false;
        throw e;
      }
    }),
    rmdir: wrap((path: string) => {
      if (!tree) return rmdirSync(path);
      if (readdirSync(path, { withFileTypes: true }).some((e) => e.isDirectory())) {
        throw Object.assign(new Error(`EBUSY: cgroup has children: ${path}`), { code: 'EBUSY' });
      }
      let procs = '';
      try {
        procs = readFileSync(join(path, 'cgroup.procs'), 'utf8');
      } catch {
        // No procs file in a fake tree: empty.
      }
      if (procs.trim()) throw Object.assign(new Error(`EBUSY: cgroup is populated: ${path}`), { code: 'EBUSY' });
      statSync(path); // ENOENT as rmdir would
      rmSync(path, { recursive: true });
    }),
    subdirs: wrap((path: string) =>
      readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name),
    ),
    exists: wrap((path: string) => existsSync(path)),
  };
}
