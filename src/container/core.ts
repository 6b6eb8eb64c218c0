/**
 * What the container manager's parts share, made once per manager: the record store (with its
 * index of active containers) and the {@link ContainerCore} that carries the engine's context,
 * the records, the file layout and the event log.
 *
 * @module
 */
import { RecordStore } from '../state/record-store.js';
import type { ContainerCore, ContainerServiceContext } from './context.js';
import { containerRecordSchema, type ContainerRecord } from './record.js';
import { ACTIVE_SUBSET } from './run-state.js';
import type { ContainerPaths } from './spec.js';
import { isActive } from './status.js';

/**
 * The container records under `dir`. Container state changes often and is rebuilt from the
 * kernel when read: rename gives atomicity; fsync (power-loss durability) is not worth ~0.5 ms on
 * every transition. The subset `active` (running, paused, restarting as recorded) is indexed:
 * listing the running containers reads those records only, however many exited ones the root holds.
 */
export function containerRecords(dir: string): RecordStore<ContainerRecord> {
  return new RecordStore<ContainerRecord>({
    dir,
    kind: 'container',
    noun: 'container',
    schema: containerRecordSchema as never,
    fsync: false,
    subsets: { [ACTIVE_SUBSET]: (r) => isActive(r.state.status) },
  });
}

/** The core over `records` and the layout `paths`, appending events through `ctx`. */
export function containerCore(
  ctx: ContainerServiceContext,
  records: RecordStore<ContainerRecord>,
  paths: (id: string) => ContainerPaths,
): ContainerCore {
  return {
    ctx,
    records,
    paths,
    event: async (action, rec, extra = {}) => {
      await ctx.appendEvent({
        type: 'container',
        action,
        id: rec.id,
        attributes: { name: rec.name, image: rec.image, ...rec.config.labels, ...extra },
      });
    },
  };
}
