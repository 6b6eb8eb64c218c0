/**
 * Where a container's limits are on this machine's cgroup version, for tests that check the
 * kernel's own files: v1 keeps each limit in its controller's hierarchy
 * (`/sys/fs/cgroup/memory/berth/<id>/memory.limit_in_bytes`), v2 keeps them all in one directory
 * (`/sys/fs/cgroup/berth/<id>/memory.max`). Tests assert the version's own file names and formats,
 * so a test cannot pass on a version it does not check.
 *
 * @module
 */
import { join } from 'node:path';
import { detectCgroups } from '../../src/runtime/cgroups/index.js';

/** This machine's cgroup layout. */
export const cgroupLayout = detectCgroups();

/** The cgroup version containers use here: 2 on a unified (v2-only) machine, 1 on v1 and hybrid. */
export const cgroupVersion: 1 | 2 = cgroupLayout.mode === 'v2' ? 2 : 1;

/** A limit whose kernel file {@link limitFile} names. */
export type LimitName = 'memory' | 'cpu' | 'pids';

const V1_FILES: Record<LimitName, [controller: 'memory' | 'cpu' | 'pids', file: string]> = {
  memory: ['memory', 'memory.limit_in_bytes'],
  cpu: ['cpu', 'cpu.cfs_quota_us'],
  pids: ['pids', 'pids.max'],
};
const V2_FILES: Record<LimitName, string> = { memory: 'memory.max', cpu: 'cpu.max', pids: 'pids.max' };

/** The directories of a container's cgroup: one per v1 hierarchy berth uses, or the one v2 directory. */
export function containerCgroupDirs(id: string): string[] {
  if (cgroupVersion === 2) return [join(cgroupLayout.v2Mount!, 'berth', id)];
  return [...new Set(Object.values(cgroupLayout.v1))].map((mount) => join(mount, 'berth', id));
}

/** The kernel file holding a container's limit on this machine's cgroup version. */
export function limitFile(id: string, limit: LimitName): string {
  if (cgroupVersion === 2) return join(cgroupLayout.v2Mount!, 'berth', id, V2_FILES[limit]);
  const [controller, file] = V1_FILES[limit];
  return join(cgroupLayout.v1[controller]!, 'berth', id, file);
}

/**
 * What the kernel file of a CPU limit holds for `cpus` CPUs with the default 100 ms period:
 * v1's `cpu.cfs_quota_us` holds the quota, v2's `cpu.max` the quota and the period.
 */
export function cpuLimitText(cpus: number): string {
  const quota = String(Math.round(cpus * 100_000));
  return cgroupVersion === 2 ? `${quota} 100000` : quota;
}
