/**
 * The verbs of a container that act on its cgroup: pause and unpause (the freezer), live limits
 * (`docker update`), stats and the process list. The caller has checked the container's status
 * against the state table (`status.ts`).
 *
 * @module
 */
import { BerthError } from '../errors.js';
import type { CgroupDriver, CgroupLimits, CgroupStats } from '../runtime/cgroups/index.js';
import type { ContainerCore } from './context.js';
import { labelOf, type ContainerRecord } from './record.js';
import { isActive } from './status.js';

/** The cgroup driver, or the error of a machine without one. */
function driver(core: ContainerCore, rec: ContainerRecord, verb: string): CgroupDriver {
  if (!core.ctx.cgroups)
    throw new BerthError(
      'KERNEL',
      `cannot ${verb} container ${labelOf(rec)}: this machine has no usable cgroup hierarchy`,
    );
  return core.ctx.cgroups;
}

/** Freezes every process of running container `rec` (cgroup freezer); records it paused. */
export async function pause(core: ContainerCore, rec: ContainerRecord): Promise<ContainerRecord> {
  await driver(core, rec, 'pause').freeze(rec.id);
  const next = await core.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, status: 'paused' } }));
  await core.event('pause', next);
  return next;
}

/** Thaws paused container `rec`; records it running. */
export async function unpause(core: ContainerCore, rec: ContainerRecord): Promise<ContainerRecord> {
  await driver(core, rec, 'unpause').thaw(rec.id);
  const next = await core.records.update(rec.id, (r) => ({ ...r, state: { ...r.state, status: 'running' } }));
  await core.event('unpause', next);
  return next;
}

/** Merges `resources` into `rec`'s limits (applied live when it runs), as `docker update`. */
export async function update(
  core: ContainerCore,
  rec: ContainerRecord,
  resources: CgroupLimits,
): Promise<ContainerRecord> {
  const merged: CgroupLimits = { ...rec.config.resources, ...resources };
  if (isActive(rec.state.status)) await driver(core, rec, 'update').update(rec.id, resources);
  const next = await core.records.update(rec.id, (r) => ({ ...r, config: { ...r.config, resources: merged } }));
  await core.event('update', next);
  return next;
}

/** One sample of running container `rec`'s cgroup figures. */
export async function stats(core: ContainerCore, rec: ContainerRecord): Promise<CgroupStats> {
  return driver(core, rec, 'stat').stats(rec.id);
}

/** Host pids of every process in running container `rec` (its PID 1 alone without cgroups). */
export async function pids(core: ContainerCore, rec: ContainerRecord): Promise<number[]> {
  return core.ctx.cgroups ? core.ctx.cgroups.pids(rec.id) : [rec.state.pid];
}
