/**
 * The cgroup v1 driver: one directory per controller hierarchy
 * (`/sys/fs/cgroup/<controller>/berth/<id>`), as on v1 and hybrid machines.
 *
 * File by file: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` (when swap accounting is
 * on), `memory.soft_limit_in_bytes`; `cpu.cfs_period_us`, `cpu.cfs_quota_us`, `cpu.shares`;
 * `cpuset.cpus`, `cpuset.mems` (copied from the parent when not given: a v1 cpuset starts empty and
 * takes no task until both are set); `pids.max`; `devices.deny`/`devices.allow`; `freezer.state`.
 *
 * @module
 */
import { totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { attachCleanupErrors, BerthError, cleanupAfterAsync } from '../../errors.js';
import { nodeCgroupFs, type CgroupFs } from './cgroup-fs.js';
import {
  checkId,
  checkParent,
  errCode,
  kernelError,
  parseKeyValues,
  parseNumber,
  parsePids,
  readOptional,
  removeCgroupTree,
  killQuietly,
  waitFor,
  writeFile,
} from './common.js';
import { detectCgroups, V1_CONTROLLERS, type CgroupLayout, type V1Controller } from './detect.js';
import { cgroupDeviceRules, formatDeviceRule } from './devices.js';
import type {
  CgroupCreateInfo,
  CgroupCreateOptions,
  CgroupDriver,
  CgroupDriverOptions,
  CgroupStats,
  CgroupView,
} from './driver.js';
import type { CgroupLimits } from './resources.js';

/** Memory limits at or above this are "unlimited" (the kernel reports PAGE_COUNTER_MAX in bytes). */
const V1_UNLIMITED = 2 ** 62;
/** USER_HZ: the unit of `cpuacct.stat`. */
const NS_PER_TICK = 10_000_000;

/**
 * Drives cgroup v1 hierarchies.
 *
 * @example
 * ```ts
 * const driver = new V1Driver();
 * const { procsFiles } = await driver.create(id, parseResources({ memory: '64m' }));
 * ```
 */
export class V1Driver implements CgroupDriver {
  /** Always 1. */
  readonly version = 1 as const;
  readonly #layout: CgroupLayout;
  readonly #parent: string;
  readonly #fs: CgroupFs;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #kill: (pid: number, signal: 'SIGKILL') => void;

  /** Makes a driver; see {@link CgroupDriverOptions}. Throws when the layout has no v1 controller. */
  constructor(options: CgroupDriverOptions = {}) {
    this.#layout = options.layout ?? detectCgroups();
    if (Object.keys(this.#layout.v1).length === 0) {
      throw new BerthError('KERNEL', 'no cgroup v1 controller is mounted; use the cgroup v2 driver');
    }
    this.#parent = checkParent(options.parent ?? 'berth');
    this.#fs = options.fs ?? nodeCgroupFs();
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#pollMs = options.pollMs ?? 10;
    this.#kill = options.kill ?? ((pid, signal) => process.kill(pid, signal));
  }

  /** The directory of `id` in the hierarchy of `controller`; undefined when not mounted. */
  #dir(controller: V1Controller, id: string): string | undefined {
    const mount = this.#layout.v1[controller];
    return mount === undefined ? undefined : join(mount, this.#parent, id);
  }

  /** Mount points of the hierarchies, each once (co-mounted controllers share one). */
  #mounts(): string[] {
    return [...new Set(Object.values(this.#layout.v1))];
  }

  /** {@inheritDoc CgroupDriver.paths} */
  paths(id: string): string[] {
    checkId(id);
    return this.#mounts().map((m) => join(m, this.#parent, id));
  }

  /** {@inheritDoc CgroupDriver.threadJoinFiles} */
  threadJoinFiles(id: string): string[] {
    return this.paths(id).map((p) => join(p, 'tasks'));
  }

  /** {@inheritDoc CgroupDriver.view} */
  view(): CgroupView {
    return {
      version: 1,
      hierarchies: this.#mounts().map((mount) => {
        const dir = basename(mount);
        const controllers = V1_CONTROLLERS.filter((c) => this.#layout.v1[c] === mount);
        return {
          dir,
          options: this.#layout.v1MountOptions?.[mount] ?? controllers.join(','),
          aliases: controllers.filter((c) => c !== dir),
        };
      }),
    };
  }

  /** {@inheritDoc CgroupDriver.exists} */
  async exists(id: string): Promise<boolean> {
    for (const p of this.paths(id)) if (await this.#fs.exists(p)) return true;
    return false;
  }

  /** {@inheritDoc CgroupDriver.create} */
  async create(id: string, limits: CgroupLimits, options: CgroupCreateOptions = {}): Promise<CgroupCreateInfo> {
    const paths = this.paths(id);
    const deviceRules = options.allowAllDevices === true ? [] : cgroupDeviceRules(options.devices);
    try {
      for (const mount of this.#mounts()) {
        let dir = mount;
        for (const part of [...this.#parent.split('/'), id]) {
          const parentDir = dir;
          dir = join(dir, part);
          await this.#mkdir(dir);
          // Also when it existed: another process may have made it and not filled it yet, and a
          // child of an empty cpuset would inherit nothing (joining it fails with ENOSPC).
          if (mount === this.#layout.v1.cpuset) await this.#inheritCpuset(parentDir, dir);
        }
      }
      const devices = this.#dir('devices', id);
      if (devices !== undefined) {
        for (const rule of deviceRules) {
          await writeFile(
            this.#fs,
            join(devices, rule.allow ? 'devices.allow' : 'devices.deny'),
            formatDeviceRule(rule),
          );
        }
      }
      await this.update(id, limits);
    } catch (e) {
      throw await cleanupAfterAsync(e, () => this.destroy(id));
    }
    return { procsFiles: paths.map((p) => join(p, 'cgroup.procs')), paths };
  }

  /** Makes a cgroup directory; false when it existed. */
  async #mkdir(dir: string): Promise<boolean> {
    try {
      return await this.#fs.mkdir(dir);
    } catch (e) {
      throw new BerthError('KERNEL', `cannot make cgroup ${dir}: ${errCode(e) ?? String(e)}`, { cause: e });
    }
  }

  /**
   * A v1 cpuset is born empty: copy the parent's cpus and mems into it unless it has its own.
   * Idempotent, so that processes creating cgroups under one new parent at once may all do it.
   */
  async #inheritCpuset(parentDir: string, dir: string): Promise<void> {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const own = (await readOptional(this.#fs, join(dir, file)))?.trim();
      if (own) continue;
      const inherited = (await readOptional(this.#fs, join(parentDir, file)))?.trim();
      if (inherited) await writeFile(this.#fs, join(dir, file), inherited);
    }
  }

  /** {@inheritDoc CgroupDriver.update} */
  async update(id: string, limits: CgroupLimits): Promise<void> {
    checkId(id);
    const memory = this.#dir('memory', id);
    if (memory !== undefined) await this.#updateMemory(memory, limits);
    const cpu = this.#dir('cpu', id);
    if (cpu !== undefined) {
      if (limits.cpuPeriod !== undefined)
        await writeFile(this.#fs, join(cpu, 'cpu.cfs_period_us'), String(limits.cpuPeriod));
      if (limits.cpuQuota !== undefined)
        await writeFile(this.#fs, join(cpu, 'cpu.cfs_quota_us'), String(limits.cpuQuota));
      if (limits.cpuShares !== undefined) await writeFile(this.#fs, join(cpu, 'cpu.shares'), String(limits.cpuShares));
    }
    const cpuset = this.#dir('cpuset', id);
    if (cpuset !== undefined) {
      if (limits.cpusetCpus !== undefined) await writeFile(this.#fs, join(cpuset, 'cpuset.cpus'), limits.cpusetCpus);
      if (limits.cpusetMems !== undefined) await writeFile(this.#fs, join(cpuset, 'cpuset.mems'), limits.cpusetMems);
    }
    const pids = this.#dir('pids', id);
    if (pids !== undefined && limits.pids !== undefined) {
      await writeFile(this.#fs, join(pids, 'pids.max'), limits.pids < 0 ? 'max' : String(limits.pids));
    }
    this.#refuseMissing(limits);
  }

  /** A limit for a controller that is not mounted cannot be honoured: say so rather than ignore it. */
  #refuseMissing(limits: CgroupLimits): void {
    const need: Array<[V1Controller, boolean]> = [
      ['memory', limits.memory !== undefined || limits.memoryReservation !== undefined],
      ['cpu', limits.cpuQuota !== undefined || limits.cpuPeriod !== undefined || limits.cpuShares !== undefined],
      ['cpuset', limits.cpusetCpus !== undefined || limits.cpusetMems !== undefined],
      ['pids', limits.pids !== undefined],
    ];
    for (const [c, wanted] of need) {
      if (wanted && this.#layout.v1[c] === undefined) {
        throw new BerthError('KERNEL', `the cgroup v1 '${c}' controller is not mounted: cannot apply a ${c} limit`);
      }
    }
  }

  /**
   * memory.limit_in_bytes must stay at or below memory.memsw.limit_in_bytes at every moment, so the
   * order of the two writes depends on the direction of the change: try memory first, and on
   * EINVAL raise the memsw limit first.
   */
  async #updateMemory(dir: string, limits: CgroupLimits): Promise<void> {
    const limitFile = join(dir, 'memory.limit_in_bytes');
    const swapFile = join(dir, 'memory.memsw.limit_in_bytes');
    const swap =
      limits.memorySwap !== undefined && (await this.#fs.exists(swapFile)) ? String(limits.memorySwap) : undefined;
    if (limits.memory !== undefined) {
      const value = String(limits.memory);
      let swapWritten = false;
      try {
        await this.#fs.write(limitFile, value);
      } catch (e) {
        if (errCode(e) !== 'EINVAL' || swap === undefined)
          throw kernelError('write', limitFile, e, `${limitFile} <- ${value}`);
        await writeFile(this.#fs, swapFile, swap);
        await writeFile(this.#fs, limitFile, value);
        swapWritten = true;
      }
      if (swap !== undefined && !swapWritten) await writeFile(this.#fs, swapFile, swap);
    } else if (swap !== undefined) {
      await writeFile(this.#fs, swapFile, swap);
    }
    if (limits.memoryReservation !== undefined) {
      await writeFile(this.#fs, join(dir, 'memory.soft_limit_in_bytes'), String(limits.memoryReservation));
    }
  }

  #freezerState(id: string): string {
    const dir = this.#dir('freezer', id);
    if (dir === undefined)
      throw new BerthError('KERNEL', 'the cgroup v1 freezer controller is not mounted: cannot pause');
    return join(dir, 'freezer.state');
  }

  /** {@inheritDoc CgroupDriver.freeze} */
  async freeze(id: string): Promise<void> {
    checkId(id);
    const file = this.#freezerState(id);
    await writeFile(this.#fs, file, 'FROZEN');
    try {
      // The kernel may stay FREEZING while a task is in an uninterruptible sleep; asking again helps.
      await waitFor(
        async () => (await this.#fs.read(file)).trim() === 'FROZEN',
        `freezing cgroup ${id}`,
        this.#timeoutMs,
        this.#pollMs,
        async (n) => {
          if (n % 10 === 0) await writeFile(this.#fs, file, 'FROZEN');
        },
      );
    } catch (e) {
      throw await cleanupAfterAsync(e, () => this.#fs.write(file, 'THAWED'));
    }
  }

  /** {@inheritDoc CgroupDriver.thaw} */
  async thaw(id: string): Promise<void> {
    checkId(id);
    const file = this.#freezerState(id);
    await writeFile(this.#fs, file, 'THAWED');
    await waitFor(
      async () => (await this.#fs.read(file)).trim() === 'THAWED',
      `thawing cgroup ${id}`,
      this.#timeoutMs,
      this.#pollMs,
    );
  }

  /** {@inheritDoc CgroupDriver.frozen} */
  async frozen(id: string): Promise<boolean> {
    checkId(id);
    return (await readOptional(this.#fs, this.#freezerState(id)))?.trim() === 'FROZEN';
  }

  /** {@inheritDoc CgroupDriver.stats} */
  async stats(id: string): Promise<CgroupStats> {
    checkId(id);
    const read = async (c: V1Controller, file: string): Promise<string | undefined> => {
      const dir = this.#dir(c, id);
      return dir === undefined ? undefined : readOptional(this.#fs, join(dir, file));
    };
    const totalNs = parseNumber(await read('cpuacct', 'cpuacct.usage')) ?? 0;
    let userNs = parseNumber(await read('cpuacct', 'cpuacct.usage_user'));
    let systemNs = parseNumber(await read('cpuacct', 'cpuacct.usage_sys'));
    if (userNs === undefined || systemNs === undefined) {
      const ticks = parseKeyValues(await read('cpuacct', 'cpuacct.stat'));
      userNs = (ticks.get('user') ?? 0) * NS_PER_TICK;
      systemNs = (ticks.get('system') ?? 0) * NS_PER_TICK;
    }
    const throttled = parseKeyValues(await read('cpu', 'cpu.stat')).get('throttled_time');
    const rawLimit = parseNumber(await read('memory', 'memory.limit_in_bytes'));
    const memStat = await read('memory', 'memory.stat');
    const mem = parseKeyValues(memStat);
    const pidsMax = parseNumber(await read('pids', 'pids.max'));
    const io =
      (await read('blkio', 'blkio.throttle.io_service_bytes_recursive')) ??
      (await read('blkio', 'blkio.throttle.io_service_bytes'));
    const stats: CgroupStats = {
      cpu: { totalNs, userNs, systemNs },
      memory: {
        usage: parseNumber(await read('memory', 'memory.usage_in_bytes')) ?? 0,
        limit: rawLimit === undefined || rawLimit >= V1_UNLIMITED ? totalmem() : Math.min(rawLimit, totalmem()),
      },
      pids: { current: parseNumber(await read('pids', 'pids.current')) ?? (await this.pids(id)).length },
      blkio: sumBlkio(io),
    };
    if (throttled !== undefined) stats.cpu.throttledNs = throttled;
    if (memStat !== undefined) {
      stats.memory.cache = mem.get('total_cache') ?? mem.get('cache') ?? 0;
      stats.memory.rss = mem.get('total_rss') ?? mem.get('rss') ?? 0;
    }
    if (pidsMax !== undefined) stats.pids.limit = pidsMax;
    return stats;
  }

  /** {@inheritDoc CgroupDriver.oomKilled} */
  async oomKilled(id: string): Promise<boolean> {
    checkId(id);
    const dir = this.#dir('memory', id);
    if (dir === undefined) return false;
    const control = parseKeyValues(await readOptional(this.#fs, join(dir, 'memory.oom_control')));
    const kills = control.get('oom_kill');
    return kills !== undefined ? kills > 0 : control.get('under_oom') === 1;
  }

  /** {@inheritDoc CgroupDriver.pids} */
  async pids(id: string): Promise<number[]> {
    checkId(id);
    const c = (['pids', 'freezer', 'memory', 'cpu'] as const).find((k) => this.#layout.v1[k] !== undefined);
    const dir = c === undefined ? this.paths(id)[0]! : this.#dir(c, id)!;
    return collectPids(this.#fs, dir);
  }

  /** {@inheritDoc CgroupDriver.destroy} */
  async destroy(id: string): Promise<void> {
    const paths = this.paths(id);
    // Best effort: a process left alive or frozen keeps its directory busy, and the removal below
    // fails and says so.
    await this.killAll(id);
    const errors: unknown[] = [];
    for (const dir of paths) {
      try {
        await removeCgroupTree(this.#fs, dir, this.#kill, this.#timeoutMs, this.#pollMs);
      } catch (e) {
        errors.push(e);
      }
    }
    // The first hierarchy's failure, with the others' attached.
    if (errors.length) throw attachCleanupErrors(errors[0], errors.slice(1));
  }

  /** {@inheritDoc CgroupDriver.killAll} */
  async killAll(id: string): Promise<void> {
    const freezerDir = this.#dir('freezer', id);
    if (
      freezerDir === undefined ||
      !(await this.#fs.exists(freezerDir)) ||
      (await collectPids(this.#fs, freezerDir)).length === 0
    )
      return;
    // Freeze first so nothing forks between reading the pids and killing them (runc does the same).
    await this.freeze(id).catch(() => undefined);
    for (const pid of await collectPids(this.#fs, freezerDir)) this.#signal(pid);
    await this.thaw(id).catch(() => undefined);
  }

  /** {@inheritDoc CgroupDriver.removeParent} */
  async removeParent(): Promise<void> {
    // Not empty (another engine's containers) or already gone: either way it is left to them.
    for (const mount of this.#mounts()) await this.#fs.rmdir(join(mount, this.#parent)).catch(() => undefined);
  }

  #signal(pid: number): void {
    killQuietly(this.#kill, pid);
  }
}

/** Sums `Read` and `Write` over the devices of a `blkio.throttle.io_service_bytes*` text. */
function sumBlkio(text: string | undefined): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of (text ?? '').split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (!dev?.includes(':') || value === undefined) continue;
    if (op === 'Read') readBytes += Number(value) || 0;
    else if (op === 'Write') writeBytes += Number(value) || 0;
  }
  return { readBytes, writeBytes };
}

/** Pids in `dir`'s `cgroup.procs` and in those of its child cgroups, sorted. */
export async function collectPids(fs: CgroupFs, dir: string): Promise<number[]> {
  const out: number[] = [];
  const walk = async (d: string): Promise<void> => {
    out.push(...parsePids(await readOptional(fs, join(d, 'cgroup.procs'))));
    let children: string[];
    try {
      children = await fs.subdirs(d);
    } catch {
      // Removed meanwhile (or a fake tree's file): no children to walk.
      return;
    }
    for (const c of children) await walk(join(d, c));
  };
  await walk(dir);
  return [...new Set(out)].sort((a, b) => a - b);
}
