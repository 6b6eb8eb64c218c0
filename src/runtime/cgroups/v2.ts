/**
 * The cgroup v2 driver: one directory per container in the unified hierarchy
 * (`/sys/fs/cgroup/berth/<id>`), with the controllers berth needs enabled in the
 * `cgroup.subtree_control` of every ancestor.
 *
 * File by file: `memory.max`, `memory.low` (the reservation), `memory.swap.max` (swap alone:
 * `memorySwap - memory`); `cpu.max` (`quota period`), `cpu.weight` (from shares, see
 * `sharesToWeight`); `cpuset.cpus`, `cpuset.mems`; `pids.max`; `cgroup.freeze` with
 * `cgroup.events`; `cgroup.kill`. Device rules: a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to
 * the cgroup's directory (see `bpf-devices.ts`), with the meaning the v1 rules have.
 *
 * @module
 */
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { BerthError, cleanupAfterAsync } from '../../errors.js';
import { nodeCgroupFs, type CgroupFs } from './cgroup-fs.js';
import {
  checkId,
  checkParent,
  parseKeyValues,
  parseNumber,
  readOptional,
  removeCgroupTree,
  killQuietly,
  waitFor,
  writeFile,
} from './common.js';
import { detectCgroups, V2_CONTROLLERS, type CgroupLayout } from './detect.js';
import type {
  CgroupCreateInfo,
  CgroupCreateOptions,
  CgroupDriver,
  CgroupDriverOptions,
  CgroupStats,
  CgroupView,
} from './driver.js';
import { bpfDeviceFilter, type DeviceFilterLoader } from './bpf-devices.js';
import { cgroupDeviceRules } from './devices.js';
import { DEFAULT_CPU_PERIOD, sharesToWeight, type CgroupLimits } from './resources.js';
import { collectPids } from './v1.js';

/**
 * Drives the cgroup v2 (unified) hierarchy.
 *
 * @example
 * ```ts
 * const driver = new V2Driver();
 * const { procsFiles } = await driver.create(id, parseResources({ memory: '64m', cpus: 0.5 }));
 * ```
 */
export class V2Driver implements CgroupDriver {
  /** Always 2. */
  readonly version = 2 as const;
  readonly #mount: string;
  readonly #controllers: string[];
  readonly #parent: string;
  readonly #fs: CgroupFs;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #kill: (pid: number, signal: 'SIGKILL') => void;
  readonly #deviceFilter: DeviceFilterLoader;

  /** Makes a driver; see {@link CgroupDriverOptions}. Throws when the layout has no cgroup2 mount. */
  constructor(options: CgroupDriverOptions = {}) {
    const layout: CgroupLayout = options.layout ?? detectCgroups();
    if (layout.v2Mount === undefined)
      throw new BerthError('KERNEL', 'no cgroup2 hierarchy is mounted; use the cgroup v1 driver');
    this.#mount = layout.v2Mount;
    this.#controllers = V2_CONTROLLERS.filter((c) => layout.v2Controllers.includes(c));
    this.#parent = checkParent(options.parent ?? 'berth');
    this.#fs = options.fs ?? nodeCgroupFs();
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#pollMs = options.pollMs ?? 10;
    this.#kill = options.kill ?? ((pid, signal) => process.kill(pid, signal));
    this.#deviceFilter = options.deviceFilter ?? bpfDeviceFilter();
  }

  #dir(id: string): string {
    checkId(id);
    return join(this.#mount, this.#parent, id);
  }

  /** {@inheritDoc CgroupDriver.paths} */
  paths(id: string): string[] {
    return [this.#dir(id)];
  }

  /** {@inheritDoc CgroupDriver.threadJoinFiles} */
  threadJoinFiles(id: string): string[] {
    checkId(id);
    return [];
  }

  /** {@inheritDoc CgroupDriver.view} */
  view(): CgroupView {
    return { version: 2 };
  }

  /** {@inheritDoc CgroupDriver.exists} */
  exists(id: string): Promise<boolean> {
    return this.#fs.exists(this.#dir(id));
  }

  /** {@inheritDoc CgroupDriver.create} */
  async create(id: string, limits: CgroupLimits, options: CgroupCreateOptions = {}): Promise<CgroupCreateInfo> {
    const dir = this.#dir(id);
    const deviceRules = options.allowAllDevices === true ? null : cgroupDeviceRules(options.devices);
    let made = false;
    try {
      let cur = this.#mount;
      for (const part of this.#parent.split('/')) {
        await this.#enableControllers(cur);
        cur = join(cur, part);
        await this.#fs.mkdir(cur);
      }
      await this.#enableControllers(cur);
      made = await this.#fs.mkdir(dir);
      // Before anything can join: the zygote moves the init in once this resolves.
      await this.#deviceFilter.apply(dir, deviceRules);
      await this.update(id, limits);
    } catch (e) {
      const error =
        e instanceof BerthError ? e : new BerthError('KERNEL', `cannot make cgroup ${dir}: ${String(e)}`, { cause: e });
      throw made ? await cleanupAfterAsync(error, () => this.destroy(id)) : error;
    }
    return { procsFiles: [join(dir, 'cgroup.procs')], paths: [dir] };
  }

  /** Enables in `dir`'s `cgroup.subtree_control` each controller berth uses that is not enabled yet. */
  async #enableControllers(dir: string): Promise<void> {
    const file = join(dir, 'cgroup.subtree_control');
    const enabled = ((await readOptional(this.#fs, file)) ?? '').split(/\s+/);
    for (const c of this.#controllers) {
      if (enabled.includes(c)) continue;
      // One at a time, and not fatal: a controller that cannot be delegated only fails the limits
      // that need it (their files are then missing, and the write names the file).
      await writeFile(this.#fs, file, `+${c}`).catch(() => undefined);
    }
  }

  /** {@inheritDoc CgroupDriver.update} */
  async update(id: string, limits: CgroupLimits): Promise<void> {
    const dir = this.#dir(id);
    const need = (controller: string, what: string): void => {
      if (!this.#controllers.includes(controller)) {
        throw new BerthError(
          'KERNEL',
          `the cgroup v2 '${controller}' controller is not available: cannot apply ${what}`,
        );
      }
    };
    const write = (file: string, value: string): Promise<void> => writeFile(this.#fs, join(dir, file), value);
    const max = (n: number): string => (n < 0 ? 'max' : String(n));
    if (limits.memory !== undefined) {
      need('memory', 'a memory limit');
      await write('memory.max', max(limits.memory));
    }
    if (limits.memoryReservation !== undefined) {
      need('memory', 'a memory reservation');
      await write('memory.low', limits.memoryReservation < 0 ? '0' : String(limits.memoryReservation));
    }
    if (limits.memorySwap !== undefined && (await this.#fs.exists(join(dir, 'memory.swap.max')))) {
      const memory = limits.memory ?? parseNumber(await readOptional(this.#fs, join(dir, 'memory.max'))) ?? -1;
      const swap = limits.memorySwap < 0 || memory < 0 ? -1 : Math.max(0, limits.memorySwap - memory);
      await write('memory.swap.max', max(swap));
    }
    if (limits.cpuQuota !== undefined || limits.cpuPeriod !== undefined) {
      need('cpu', 'a cpu quota');
      const [quota, period] = ((await readOptional(this.#fs, join(dir, 'cpu.max'))) ?? `max ${DEFAULT_CPU_PERIOD}`)
        .trim()
        .split(/\s+/);
      const q = limits.cpuQuota === undefined ? (quota ?? 'max') : max(limits.cpuQuota);
      await write('cpu.max', `${q} ${limits.cpuPeriod ?? period ?? DEFAULT_CPU_PERIOD}`);
    }
    if (limits.cpuShares !== undefined) {
      need('cpu', 'cpu shares');
      await write('cpu.weight', String(sharesToWeight(limits.cpuShares)));
    }
    if (limits.cpusetCpus !== undefined) {
      need('cpuset', 'a cpuset');
      await write('cpuset.cpus', limits.cpusetCpus);
    }
    if (limits.cpusetMems !== undefined) {
      need('cpuset', 'a cpuset');
      await write('cpuset.mems', limits.cpusetMems);
    }
    if (limits.pids !== undefined) {
      need('pids', 'a pids limit');
      await write('pids.max', max(limits.pids));
    }
  }

  async #frozenFlag(dir: string): Promise<number | undefined> {
    return parseKeyValues(await readOptional(this.#fs, join(dir, 'cgroup.events'))).get('frozen');
  }

  /** {@inheritDoc CgroupDriver.freeze} */
  async freeze(id: string): Promise<void> {
    const dir = this.#dir(id);
    await writeFile(this.#fs, join(dir, 'cgroup.freeze'), '1');
    try {
      await waitFor(
        async () => (await this.#frozenFlag(dir)) === 1,
        `freezing cgroup ${id}`,
        this.#timeoutMs,
        this.#pollMs,
      );
    } catch (e) {
      throw await cleanupAfterAsync(e, () => this.#fs.write(join(dir, 'cgroup.freeze'), '0'));
    }
  }

  /** {@inheritDoc CgroupDriver.thaw} */
  async thaw(id: string): Promise<void> {
    const dir = this.#dir(id);
    await writeFile(this.#fs, join(dir, 'cgroup.freeze'), '0');
    await waitFor(
      async () => (await this.#frozenFlag(dir)) !== 1,
      `thawing cgroup ${id}`,
      this.#timeoutMs,
      this.#pollMs,
    );
  }

  /** {@inheritDoc CgroupDriver.frozen} */
  async frozen(id: string): Promise<boolean> {
    return (await this.#frozenFlag(this.#dir(id))) === 1;
  }

  /** {@inheritDoc CgroupDriver.stats} */
  async stats(id: string): Promise<CgroupStats> {
    const dir = this.#dir(id);
    const read = (file: string): Promise<string | undefined> => readOptional(this.#fs, join(dir, file));
    const cpu = parseKeyValues(await read('cpu.stat'));
    const memStat = await read('memory.stat');
    const mem = parseKeyValues(memStat);
    const limit = parseNumber(await read('memory.max'));
    const pidsMax = parseNumber(await read('pids.max'));
    const stats: CgroupStats = {
      cpu: {
        totalNs: (cpu.get('usage_usec') ?? 0) * 1000,
        userNs: (cpu.get('user_usec') ?? 0) * 1000,
        systemNs: (cpu.get('system_usec') ?? 0) * 1000,
      },
      memory: {
        usage: parseNumber(await read('memory.current')) ?? 0,
        limit: limit === undefined ? totalmem() : Math.min(limit, totalmem()),
      },
      pids: { current: parseNumber(await read('pids.current')) ?? (await this.pids(id)).length },
      blkio: sumIoStat(await read('io.stat')),
    };
    const throttled = cpu.get('throttled_usec');
    if (throttled !== undefined) stats.cpu.throttledNs = throttled * 1000;
    if (memStat !== undefined) {
      stats.memory.cache = mem.get('file') ?? 0;
      stats.memory.rss = mem.get('anon') ?? 0;
    }
    if (pidsMax !== undefined) stats.pids.limit = pidsMax;
    return stats;
  }

  /** {@inheritDoc CgroupDriver.oomKilled} */
  async oomKilled(id: string): Promise<boolean> {
    const events = parseKeyValues(await readOptional(this.#fs, join(this.#dir(id), 'memory.events')));
    return (events.get('oom_kill') ?? 0) > 0;
  }

  /** {@inheritDoc CgroupDriver.pids} */
  pids(id: string): Promise<number[]> {
    return collectPids(this.#fs, this.#dir(id));
  }

  /** {@inheritDoc CgroupDriver.destroy} */
  async destroy(id: string): Promise<void> {
    const dir = this.#dir(id);
    if (!(await this.#fs.exists(dir))) return;
    // Best effort: a process left alive keeps the directory busy, and the removal fails and says so.
    await this.killAll(id);
    await removeCgroupTree(this.#fs, dir, this.#kill, this.#timeoutMs, this.#pollMs);
  }

  /** {@inheritDoc CgroupDriver.killAll} */
  async killAll(id: string): Promise<void> {
    const dir = this.#dir(id);
    if (!(await this.#fs.exists(dir))) return;
    const killFile = join(dir, 'cgroup.kill');
    if (await this.#fs.exists(killFile)) {
      // cgroup.kill (Linux 5.14) kills the whole subtree at once, racing no fork.
      await this.#fs.write(killFile, '1').catch(() => undefined);
    } else if ((await this.pids(id)).length > 0) {
      await this.freeze(id).catch(() => undefined);
      for (const pid of await this.pids(id)) this.#signal(pid);
      await this.thaw(id).catch(() => undefined);
    }
  }

  /** {@inheritDoc CgroupDriver.removeParent} */
  async removeParent(): Promise<void> {
    // Not empty (another engine's containers) or already gone: either way it is left to them.
    await this.#fs.rmdir(join(this.#mount, this.#parent)).catch(() => undefined);
  }

  #signal(pid: number): void {
    killQuietly(this.#kill, pid);
  }
}

/** Sums `rbytes` and `wbytes` over the devices of an `io.stat` text. */
function sumIoStat(text: string | undefined): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const m of (text ?? '').matchAll(/\b(rbytes|wbytes)=(\d+)/g)) {
    if (m[1] === 'rbytes') readBytes += Number(m[2]);
    else writeBytes += Number(m[2]);
  }
  return { readBytes, writeBytes };
}
