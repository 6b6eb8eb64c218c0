/**
 * Which cgroup hierarchies the machine has, read from `/proc/self/mountinfo`.
 *
 * - **v2** (unified): one `cgroup2` mount whose `cgroup.controllers` lists controllers, and no v1
 *   controller mounted. Most current distributions.
 * - **v1**: one `cgroup` mount per controller (or per group of co-mounted controllers, such as
 *   `cpu,cpuacct`).
 * - **hybrid**: v1 controllers plus a `cgroup2` mount (often `/sys/fs/cgroup/unified`) that holds no
 *   controller of interest. berth uses the v1 controllers and ignores the unified and `name=…`
 *   (systemd) hierarchies.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The v1 controllers berth uses. */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids'] as const;

/** A v1 controller berth uses. */
export type V1Controller = (typeof V1_CONTROLLERS)[number];

/** The v2 controllers berth enables for containers (when the kernel offers them). */
export const V2_CONTROLLERS = ['cpu', 'cpuset', 'io', 'memory', 'pids'] as const;

/** What {@link detectCgroups} found. */
export interface CgroupLayout {
  /** `v2`, `v1`, `hybrid` (v1 controllers used, unified hierarchy ignored) or `none`. */
  mode: 'v1' | 'v2' | 'hybrid' | 'none';
  /**
   * Mount point of each v1 controller berth uses; co-mounted controllers share one. Empty in
   * `v2` and `none` mode; a controller the kernel lacks is absent.
   */
  v1: Partial<Record<V1Controller, string>>;
  /**
   * The options of each v1 hierarchy in `v1` (by mount point) that a mount of it must repeat
   * (`cpu,cpuacct`): its super options but `rw`/`ro` and `release_agent`. Absent in `v2` and `none`
   * mode, and in layouts made by hand (then the controllers berth knows there stand in).
   */
  v1MountOptions?: Record<string, string>;
  /** Mount point of the cgroup2 hierarchy; absent when there is none. */
  v2Mount?: string;
  /** Controllers in the cgroup2 root's `cgroup.controllers`; empty when unreadable or absent. */
  v2Controllers: string[];
}

/** Undoes mountinfo's octal escapes (`\040` for a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Reads the cgroup layout from a mountinfo text.
 *
 * @param mountinfo - The text of a `/proc/<pid>/mountinfo`. Default: this process's.
 * @param readControllers - Reads `cgroup.controllers` under a cgroup2 mount point. Default: from
 *   the file system; tests pass a fake tree's mount point in `mountinfo` instead.
 *
 * @example
 * ```ts
 * const layout = detectCgroups();
 * if (layout.mode === 'none') console.log('no cgroups: limits cannot be applied');
 * ```
 */
export function detectCgroups(
  mountinfo?: string,
  readControllers: (mountPoint: string) => string = (m) => readFileSync(join(m, 'cgroup.controllers'), 'utf8'),
): CgroupLayout {
  const text = mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8');
  const v1: Partial<Record<V1Controller, string>> = {};
  const v1MountOptions: Record<string, string> = {};
  let v2Mount: string | undefined;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const mountPoint = unescape(left[4] ?? '');
    const fsType = right[0];
    if (fsType === 'cgroup2') {
      v2Mount ??= mountPoint;
    } else if (fsType === 'cgroup') {
      const opts = (right[2] ?? '').split(',');
      for (const c of V1_CONTROLLERS) {
        if (!opts.includes(c) || v1[c] !== undefined) continue;
        v1[c] = mountPoint;
        v1MountOptions[mountPoint] ??= opts
          .filter((o) => o !== 'rw' && o !== 'ro' && !o.startsWith('release_agent='))
          .join(',');
      }
    }
  }
  let v2Controllers: string[] = [];
  if (v2Mount !== undefined) {
    try {
      v2Controllers = readControllers(v2Mount).split(/\s+/).filter(Boolean);
    } catch {
      // No readable cgroup.controllers: a cgroup2 mount without controllers (hybrid's `unified`).
      v2Controllers = [];
    }
  }
  const hasV1 = Object.keys(v1).length > 0;
  // A v1 controller cannot also be active on cgroup2, so any v1 controller means v1 is in charge.
  const mode = hasV1
    ? v2Mount !== undefined
      ? 'hybrid'
      : 'v1'
    : v2Mount !== undefined && v2Controllers.length > 0
      ? 'v2'
      : 'none';
  const layout: CgroupLayout = { mode, v1: mode === 'v1' || mode === 'hybrid' ? v1 : {}, v2Controllers };
  if (v2Mount !== undefined) layout.v2Mount = v2Mount;
  if (hasV1) layout.v1MountOptions = v1MountOptions;
  return layout;
}
