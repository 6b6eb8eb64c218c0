/**
 * Fake cgroup trees for unit tests: a temp directory laid out like a cgroup2 mount or like a set
 * of v1 controller mounts, with a {@link CgroupFs} that plays the kernel's part — mkdir fills in
 * interface files, `cgroup.subtree_control` merges `+controller` writes, freezing takes a moment,
 * `cgroup.kill` empties `cgroup.procs`, v1 memory refuses a limit above memsw — and records every
 * write by value. A plain directory takes no BPF program, so the v2 tree also comes with a fake
 * {@link DeviceFilterLoader} that records the device rules each cgroup was given.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import {
  nodeCgroupFs,
  type CgroupFs,
  type CgroupLayout,
  type DeviceFilterLoader,
  type DeviceRule,
} from '../../src/runtime/cgroups/index.js';
import { detectCgroups } from '../../src/runtime/cgroups/index.js';

/** A fake tree and its knobs. */
export interface FakeTree {
  /** The temp directory (mount point of the v2 tree, or parent of the v1 controller mounts). */
  root: string;
  /** The mountinfo text describing it. */
  mountinfo: string;
  /** The layout detectCgroups reads from that mountinfo. */
  layout: CgroupLayout;
  /** The fs seam to give the driver. */
  fs: CgroupFs;
  /** Every write, in order, as [path relative to root, value]. */
  writes: Array<[string, string]>;
  /** The device filter seam to give the v2 driver: records each call in {@link FakeTree.deviceFilters}. */
  deviceFilter: DeviceFilterLoader;
  /**
   * Every device filter applied, in order: the cgroup (relative to root), its rules (`null`: none)
   * and how many writes had been made before (to check what came first).
   */
  deviceFilters: Array<{ dir: string; rules: DeviceRule[] | null; afterWrites: number }>;
  /** When set, the fake device filter throws it (as the kernel refusing the program). */
  deviceFilterError?: Error;
  /** How long the fake kernel takes to freeze, in ms; `Infinity` never finishes. */
  freezeDelayMs: number;
  /** Whether the v2 tree offers cgroup.kill (Linux ≥ 5.14). */
  hasKill: boolean;
  /** Reads a file relative to root. */
  read(rel: string): string;
  /** Writes a file relative to root (as the kernel would update it). */
  set(rel: string, value: string): void;
  /** Removes the temp directory. */
  cleanup(): void;
}

const V2_FILES: Record<string, string> = {
  'cgroup.procs': '',
  'cgroup.events': 'populated 0\nfrozen 0\n',
  'cgroup.freeze': '0',
  'cgroup.subtree_control': '',
  'memory.max': 'max',
  'memory.low': '0',
  'memory.swap.max': 'max',
  'memory.current': '0',
  'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
  'memory.stat': 'anon 0\nfile 0\n',
  'cpu.max': 'max 100000',
  'cpu.weight': '100',
  'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
  'cpuset.cpus': '',
  'cpuset.mems': '',
  'pids.max': 'max',
  'pids.current': '0',
  'io.stat': '',
};

const V1_FILES: Record<string, Record<string, string>> = {
  memory: {
    'memory.limit_in_bytes': '9223372036854771712',
    'memory.memsw.limit_in_bytes': '9223372036854771712',
    'memory.soft_limit_in_bytes': '9223372036854771712',
    'memory.usage_in_bytes': '0',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    'memory.stat': 'cache 0\nrss 0\ntotal_cache 0\ntotal_rss 0\n',
  },
  cpu: {
    'cpu.cfs_period_us': '100000',
    'cpu.cfs_quota_us': '-1',
    'cpu.shares': '1024',
    'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n',
  },
  cpuacct: {
    'cpuacct.usage': '0',
    'cpuacct.usage_user': '0',
    'cpuacct.usage_sys': '0',
    'cpuacct.stat': 'user 0\nsystem 0\n',
  },
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '' },
  devices: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm\n' },
  freezer: { 'freezer.state': 'THAWED' },
  blkio: { 'blkio.throttle.io_service_bytes_recursive': 'Total 0\n' },
  pids: { 'pids.max': 'max', 'pids.current': '0' },
};

function base(kind: 'v2' | 'v1'): Omit<FakeTree, 'mountinfo' | 'layout' | 'fs'> {
  const root = mkdtempSync(join(tmpdir(), `berth-cgfake-${kind}-`));
  const writes: Array<[string, string]> = [];
  const deviceFilters: FakeTree['deviceFilters'] = [];
  const t: Omit<FakeTree, 'mountinfo' | 'layout' | 'fs'> = {
    root,
    writes,
    deviceFilters,
    deviceFilter: {
      async apply(dir, rules) {
        if (t.deviceFilterError) throw t.deviceFilterError;
        readdirSync(dir); // the cgroup must exist, as the kernel's open of it would need
        deviceFilters.push({
          dir: relative(root, dir),
          rules: rules === null ? null : [...rules],
          afterWrites: writes.length,
        });
      },
    },
    freezeDelayMs: 30,
    hasKill: true,
    read: (rel) => readFileSync(join(root, rel), 'utf8'),
    set: (rel, value) => writeFileSync(join(root, rel), value),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
  return t;
}

/** A temp directory laid out like a cgroup2 mount with cpuset, cpu, io, memory, pids, hugetlb. */
export function fakeV2Tree(): FakeTree {
  const t = base('v2') as FakeTree;
  writeFileSync(join(t.root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma\n');
  writeFileSync(join(t.root, 'cgroup.subtree_control'), '');
  writeFileSync(join(t.root, 'cgroup.procs'), '1\n');
  t.mountinfo = `30 24 0:26 / ${t.root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
  t.layout = detectCgroups(t.mountinfo);
  const inner = nodeCgroupFs({ tree: true });
  const timers = new Set<NodeJS.Timeout>();
  t.fs = {
    ...inner,
    async mkdir(path) {
      const made = await inner.mkdir(path);
      if (made) {
        for (const [f, v] of Object.entries(V2_FILES)) writeFileSync(join(path, f), v);
        writeFileSync(
          join(path, 'cgroup.controllers'),
          readFileSync(join(dirname(path), 'cgroup.subtree_control'), 'utf8'),
        );
        if (t.hasKill) writeFileSync(join(path, 'cgroup.kill'), '');
      }
      return made;
    },
    async write(path, data) {
      t.writes.push([relative(t.root, path), data]);
      const name = basename(path);
      if (name === 'cgroup.subtree_control') {
        const have = new Set(readFileSync(path, 'utf8').split(/\s+/).filter(Boolean));
        for (const tok of data.split(/\s+/).filter(Boolean)) {
          if (tok.startsWith('+')) have.add(tok.slice(1));
          else if (tok.startsWith('-')) have.delete(tok.slice(1));
        }
        return inner.write(path, [...have].join(' '));
      }
      await inner.write(path, data);
      if (name === 'cgroup.freeze') {
        const events = join(dirname(path), 'cgroup.events');
        const apply = () =>
          writeFileSync(events, readFileSync(events, 'utf8').replace(/frozen \d/, `frozen ${data.trim()}`));
        if (data.trim() === '0') apply();
        else if (Number.isFinite(t.freezeDelayMs)) {
          const timer = setTimeout(() => {
            timers.delete(timer);
            try {
              if (readFileSync(path, 'utf8').trim() === '1') apply();
            } catch {
              // the tree is gone
            }
          }, t.freezeDelayMs);
          timers.add(timer);
        }
      } else if (name === 'cgroup.kill') {
        writeFileSync(join(dirname(path), 'cgroup.procs'), '');
      }
    },
  };
  return t;
}

/** Temp directories laid out like v1 controller mounts (cpu and cpuacct separate, as here). */
export function fakeV1Tree(options: { coMountCpu?: boolean } = {}): FakeTree {
  const t = base('v1') as FakeTree;
  const mounts: Array<[string, string[]]> = options.coMountCpu
    ? [
        ['cpu,cpuacct', ['cpu', 'cpuacct']],
        ...Object.keys(V1_FILES)
          .filter((c) => c !== 'cpu' && c !== 'cpuacct')
          .map((c): [string, string[]] => [c, [c]]),
      ]
    : Object.keys(V1_FILES).map((c): [string, string[]] => [c, [c]]);
  let lines = `31 23 0:28 / ${t.root} rw - tmpfs tmpfs rw\n`;
  let n = 40;
  for (const [dir, controllers] of mounts) {
    const mp = join(t.root, dir);
    mkdirSync(mp);
    writeFileSync(join(mp, 'cgroup.procs'), '1\n');
    for (const c of controllers) for (const [f, v] of Object.entries(V1_FILES[c]!)) writeFileSync(join(mp, f), v);
    lines += `${n++} 31 0:${n} / ${mp} rw,relatime - cgroup cgroup rw,${controllers.join(',')}\n`;
  }
  writeFileSync(join(t.root, 'cpuset', 'cpuset.cpus'), '0-3\n');
  writeFileSync(join(t.root, 'cpuset', 'cpuset.mems'), '0\n');
  mkdirSync(join(t.root, 'systemd'));
  lines += `${n++} 31 0:${n} / ${join(t.root, 'systemd')} rw - cgroup cgroup rw,name=systemd\n`;
  mkdirSync(join(t.root, 'unified'));
  writeFileSync(join(t.root, 'unified', 'cgroup.controllers'), '');
  lines += `${n++} 31 0:${n} / ${join(t.root, 'unified')} rw - cgroup2 cgroup2 rw\n`;
  t.mountinfo = lines;
  t.layout = detectCgroups(t.mountinfo);
  const inner = nodeCgroupFs({ tree: true });
  const controllersOf = (path: string): string[] => {
    const top = relative(t.root, path).split('/')[0]!;
    return mounts.find(([d]) => d === top)?.[1] ?? [];
  };
  const bytes = (file: string): number => Number(readFileSync(file, 'utf8').trim());
  t.fs = {
    ...inner,
    async mkdir(path) {
      const made = await inner.mkdir(path);
      if (made) {
        writeFileSync(join(path, 'cgroup.procs'), '');
        for (const c of controllersOf(path))
          for (const [f, v] of Object.entries(V1_FILES[c]!)) writeFileSync(join(path, f), v);
      }
      return made;
    },
    async write(path, data) {
      t.writes.push([relative(t.root, path), data]);
      const name = basename(path);
      const dir = dirname(path);
      const value = Number(data) < 0 ? 2 ** 63 : Number(data);
      if (name === 'memory.limit_in_bytes' && value > bytes(join(dir, 'memory.memsw.limit_in_bytes'))) {
        throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      }
      if (name === 'memory.memsw.limit_in_bytes' && value < bytes(join(dir, 'memory.limit_in_bytes'))) {
        throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      }
      if (name === 'freezer.state') {
        if (data === 'FROZEN') {
          if (readFileSync(path, 'utf8') !== 'FROZEN') await inner.write(path, 'FREEZING');
          if (Number.isFinite(t.freezeDelayMs)) {
            setTimeout(() => {
              try {
                if (readFileSync(path, 'utf8') === 'FREEZING') writeFileSync(path, 'FROZEN');
              } catch {
                // the tree is gone
              }
            }, t.freezeDelayMs);
          }
          return;
        }
        return inner.write(path, data);
      }
      if (name === 'devices.allow' || name === 'devices.deny') {
        const list = join(dir, 'devices.list');
        const cur = readFileSync(list, 'utf8');
        writeFileSync(
          list,
          data === 'a'
            ? name === 'devices.deny'
              ? ''
              : 'a *:* rwm\n'
            : name === 'devices.allow'
              ? `${cur}${data}\n`
              : cur,
        );
        return inner.write(path, data);
      }
      if (name === 'memory.limit_in_bytes' || name === 'memory.memsw.limit_in_bytes')
        return inner.write(path, String(Number(data) < 0 ? '9223372036854771712' : data));
      return inner.write(path, data);
    },
  };
  return t;
}
