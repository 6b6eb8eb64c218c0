/**
 * Leak checks for integration tests: take a snapshot before a test, assert after it that nothing
 * new is left behind — mounts, cgroups, processes (and, on request, network devices) that belong
 * to the test's engine root.
 *
 * ```ts
 * let before: LeakSnapshot;
 * beforeEach(() => { before = snapshotLeaks(root); });
 * afterEach(async () => { await assertNoLeaks(before); });
 * ```
 *
 * What counts as belonging to `root`:
 *
 * - **mounts**: lines of `/proc/self/mountinfo` that mention `root` — the mount point is under it, or
 *   its source or options name a path under it (an overlay whose upperdir is in it);
 * - **cgroups**: directories in every mounted cgroup hierarchy (v1 controllers and v2) that
 *   `cgroupMatch` accepts; by default, any directory whose name contains `berth` except the
 *   engines' shared parent `berth` itself, which stays while any engine is open. Test files run in
 *   parallel processes, so a cgroup that another file's engine creates meanwhile would count too:
 *   pass a `cgroupMatch` scoped to this engine when its cgroups can be told apart (see
 *   {@link containerCgroupMatch});
 * - **processes**: any process whose cwd or command line is under `root`, or that lives in another
 *   mount namespace whose mount table mentions `root` (a container's processes: their `/` is an
 *   overlay made of directories under `root`);
 * - **network devices** (only with `netdevMatch`): interfaces in `/sys/class/net` that match.
 *
 * Only what is new since the snapshot counts. Objects may take a moment to go (a process being
 * reaped, a lazy unmount), so {@link assertNoLeaks} polls for a short grace period before failing.
 *
 * @module
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Options for {@link snapshotLeaks}. */
export interface LeakOptions {
  /**
   * Which cgroup directories count, given the absolute path of each directory found. Absent: a
   * directory whose name contains `berth` (case-insensitive).
   */
  cgroupMatch?: (path: string) => boolean;
  /** Network interface names that count. Absent: network devices are not checked. */
  netdevMatch?: RegExp;
  /** Processes to leave out (e.g. a helper process the engine keeps on purpose). */
  ignoreProcess?: (process: LeakedProcess) => boolean;
}

/** One mount from `/proc/self/mountinfo`. */
export interface LeakedMount {
  /** The mount id (first field of mountinfo). */
  id: number;
  /** Where it is mounted. */
  mountPoint: string;
  /** The filesystem type, e.g. `overlay`. */
  fsType: string;
  /** The mount source, e.g. `overlay` or `/dev/sda1`. */
  source: string;
}

/** One process. */
export interface LeakedProcess {
  /** Its pid, as seen from the test process. */
  pid: number;
  /** Its start time in clock ticks since boot (field 22 of `/proc/PID/stat`): tells reused pids apart. */
  startTime: number;
  /** Its command line, arguments joined by spaces. Empty for zombies and kernel threads. */
  cmdline: string;
  /** Why it was counted: `cwd`, `cmdline` or `mountns`. */
  reason: 'cwd' | 'cmdline' | 'mountns';
}

/** What {@link snapshotLeaks} saw. */
export interface LeakSnapshot {
  /** The root the snapshot is about. */
  root: string;
  /** The options it was taken with; {@link assertNoLeaks} uses the same. */
  options: LeakOptions;
  /** Mounts that mention `root`. */
  mounts: LeakedMount[];
  /** Matching cgroup directories (absolute paths). */
  cgroups: string[];
  /** Processes under `root`. */
  processes: LeakedProcess[];
  /** Matching network interfaces; empty unless `netdevMatch` was given. */
  netdevs: string[];
}

/** Options for {@link assertNoLeaks}. */
export interface AssertNoLeaksOptions {
  /** How long to wait for leftovers to go away before failing, in ms. Absent: 2000. */
  graceMs?: number;
}

/**
 * Records the mounts, cgroups, processes (and optionally network devices) that belong to `root`
 * now. Synchronous and cheap enough for `beforeEach`.
 *
 * @param root - The engine root (or any directory) whose objects are tracked; absolute.
 * @param options - See {@link LeakOptions}.
 */
export function snapshotLeaks(root: string, options: LeakOptions = {}): LeakSnapshot {
  const trimmed = root.replace(/\/+$/, '') || '/';
  return {
    root: trimmed,
    options,
    mounts: mountsMentioning(trimmed),
    cgroups: cgroupDirs(options.cgroupMatch ?? defaultCgroupMatch),
    processes: processesUnder(trimmed).filter((p) => !options.ignoreProcess?.(p)),
    netdevs: options.netdevMatch ? netdevs(options.netdevMatch) : [],
  };
}

/**
 * Fails (throws an `Error` listing every leftover) if anything that belongs to `before.root` is
 * there now and was not in `before`, after waiting up to `graceMs` for it to go.
 *
 * @param before - A snapshot from {@link snapshotLeaks}.
 * @param options - See {@link AssertNoLeaksOptions}.
 */
export async function assertNoLeaks(before: LeakSnapshot, options: AssertNoLeaksOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.graceMs ?? 2000);
  for (;;) {
    const leaks = diffLeaks(before, snapshotLeaks(before.root, before.options));
    if (leaks.length === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(`leaked after the test (root ${before.root}):\n  ${leaks.join('\n  ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Describes, one line each, what `after` has that `before` had not. */
export function diffLeaks(before: LeakSnapshot, after: LeakSnapshot): string[] {
  const out: string[] = [];
  const mountIds = new Set(before.mounts.map((m) => m.id));
  for (const m of after.mounts)
    if (!mountIds.has(m.id)) out.push(`mount ${m.mountPoint} (${m.fsType} from ${m.source})`);
  const cgroups = new Set(before.cgroups);
  for (const c of after.cgroups) if (!cgroups.has(c)) out.push(`cgroup ${c}`);
  const procs = new Set(before.processes.map((p) => `${p.pid}/${p.startTime}`));
  for (const p of after.processes) {
    if (!procs.has(`${p.pid}/${p.startTime}`))
      out.push(`process ${p.pid} (${p.reason}): ${p.cmdline || '<no cmdline>'}`);
  }
  const devs = new Set(before.netdevs);
  for (const d of after.netdevs) if (!devs.has(d)) out.push(`network device ${d}`);
  return out;
}

/**
 * Mount points (from `/proc/self/mountinfo`) at or under `dir`, deepest first: the order to
 * unmount them in.
 */
export function mountPointsUnder(dir: string): string[] {
  const base = dir.replace(/\/+$/, '');
  return readMountinfo('/proc/self/mountinfo')
    .map((m) => m.mountPoint)
    .filter((p) => p === base || p.startsWith(`${base}/`))
    .sort((a, b) => b.length - a.length);
}

interface MountinfoLine extends LeakedMount {
  /** The whole line, decoded. */
  line: string;
}

/** Parses a mountinfo file; fields are octal-escaped (`\040` for a space), see proc(5). */
function readMountinfo(path: string): MountinfoLine[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const out: MountinfoLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw) continue;
    const [left = '', right = ''] = raw.split(' - ');
    const fields = left.split(' ');
    const [fsType = '', source = ''] = right.split(' ');
    out.push({
      id: Number(fields[0]),
      mountPoint: unescapeMountinfo(fields[4] ?? ''),
      fsType,
      source: unescapeMountinfo(source),
      line: unescapeMountinfo(raw),
    });
  }
  return out;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function mentions(text: string, root: string): boolean {
  let at = text.indexOf(root);
  while (at !== -1) {
    const next = text[at + root.length];
    // `root` itself or a path under it, not merely a path sharing its prefix (`/tmp/a` vs `/tmp/ab`).
    if (next === undefined || next === '/' || next === ' ' || next === ',' || next === ':' || next === '\0')
      return true;
    at = text.indexOf(root, at + 1);
  }
  return false;
}

function mountsMentioning(root: string): LeakedMount[] {
  return readMountinfo('/proc/self/mountinfo')
    .filter((m) => mentions(m.line, root))
    .map(({ id, mountPoint, fsType, source }) => ({ id, mountPoint, fsType, source }));
}

function defaultCgroupMatch(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return name !== 'berth' && name.toLowerCase().includes('berth');
}

/**
 * A `cgroupMatch` for the containers of the engine on `root`: the cgroups under the shared
 * parent `berth` named by an id that the engine's event log (`<root>/events.log`) has seen, plus
 * the default match. The log is read again when a container cgroup's id is not known yet.
 */
export function containerCgroupMatch(root: string): (path: string) => boolean {
  let ids = new Set<string>();
  const reload = () => {
    try {
      ids = new Set(
        [...readFileSync(join(root, 'events.log'), 'utf8').matchAll(/"id":"([0-9a-f]{64})"/g)].map((m) => m[1]!),
      );
    } catch {
      // No events yet.
    }
  };
  return (path) => {
    if (defaultCgroupMatch(path)) return true;
    const i = path.lastIndexOf('/');
    if (!path.slice(0, i).endsWith('/berth')) return false;
    const id = path.slice(i + 1);
    if (!/^[0-9a-f]{64}$/.test(id)) return false;
    if (!ids.has(id)) reload();
    return ids.has(id);
  };
}

/** Every directory of every mounted cgroup hierarchy (v1 and v2) that `match` accepts. */
function cgroupDirs(match: (path: string) => boolean): string[] {
  const roots = readMountinfo('/proc/self/mountinfo')
    .filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2')
    .map((m) => m.mountPoint);
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 12) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // removed while walking
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const path = join(dir, e.name);
      if (match(path)) out.push(path);
      walk(path, depth + 1);
    }
  };
  for (const r of new Set(roots)) walk(r, 0);
  return out.sort();
}

/** Processes whose cwd or cmdline is under `root`, or whose mount namespace's table mentions it. */
function processesUnder(root: string): LeakedProcess[] {
  const self = String(process.pid);
  const ownMountNs = readlinkOrEmpty('/proc/self/ns/mnt');
  const out: LeakedProcess[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || pid === self) continue;
    const dir = `/proc/${pid}`;
    const startTime = readStartTime(dir);
    if (startTime === undefined) continue; // gone
    const cmdline = readOrEmpty(`${dir}/cmdline`).replace(/\0+$/, '').replaceAll('\0', ' ');
    const cwd = readlinkOrEmpty(`${dir}/cwd`);
    let reason: LeakedProcess['reason'] | undefined;
    if (cwd !== '' && mentions(cwd, root)) reason = 'cwd';
    else if (mentions(cmdline, root)) reason = 'cmdline';
    else {
      const ns = readlinkOrEmpty(`${dir}/ns/mnt`);
      if (ns !== '' && ns !== ownMountNs && mentions(unescapeMountinfo(readOrEmpty(`${dir}/mountinfo`)), root))
        reason = 'mountns';
    }
    if (reason) out.push({ pid: Number(pid), startTime, cmdline, reason });
  }
  return out;
}

function readStartTime(dir: string): number | undefined {
  const stat = readOrEmpty(`${dir}/stat`);
  if (!stat) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[19]); // field 22 overall; `rest` starts at field 3
}

function netdevs(match: RegExp): string[] {
  try {
    return readdirSync('/sys/class/net')
      .filter((n) => {
        match.lastIndex = 0; // a /g or /y pattern keeps state between calls
        return match.test(n);
      })
      .sort();
  } catch {
    return [];
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}
