/**
 * Container cgroups, v1 and v2, behind one seam. See `README.md` in this folder for the model.
 *
 * @module
 */
import { BerthError } from '../../errors.js';
import { detectCgroups } from './detect.js';
import type { CgroupDriver, CgroupDriverOptions } from './driver.js';
import { V1Driver } from './v1.js';
import { V2Driver } from './v2.js';

export * from './resources.js';
export * from './detect.js';
export * from './devices.js';
export * from './device-filter.js';
export { bpfDeviceFilter, type DeviceFilterLoader } from './bpf-devices.js';
export * from './driver.js';
export { nodeCgroupFs, type CgroupFs, type NodeCgroupFsOptions } from './cgroup-fs.js';
export { V1Driver } from './v1.js';
export { V2Driver } from './v2.js';

/**
 * The driver for this machine: {@link V2Driver} on a unified (v2) machine, {@link V1Driver} on a
 * v1 or hybrid one. Throws a `BerthError` with code `KERNEL` when no cgroup hierarchy is usable.
 *
 * @example
 * ```ts
 * const cgroups = createCgroupDriver();
 * const { procsFiles } = await cgroups.create(containerId, parseResources({ memory: '256m' }));
 * ```
 */
export function createCgroupDriver(options: CgroupDriverOptions = {}): CgroupDriver {
  const layout = options.layout ?? detectCgroups();
  switch (layout.mode) {
    case 'v2':
      return new V2Driver({ ...options, layout });
    case 'v1':
    case 'hybrid':
      return new V1Driver({ ...options, layout });
    default:
      throw new BerthError(
        'KERNEL',
        'no usable cgroup hierarchy is mounted (neither v1 controllers nor cgroup2 with controllers)',
      );
  }
}
