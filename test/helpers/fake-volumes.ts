/**
 * A volume service for unit tests of the container service: every volume exists, is empty and
 * awaits its copy-up; nothing is mounted or removed.
 */
import type { ContainerVolumes } from '../../src/container/service.js';

/** Volumes that exist in name only (see the module's doc). */
export function fakeVolumes(): ContainerVolumes {
  return {
    create: async (n) => ({ name: n ?? 'anonymous', populated: false }),
    get: async (n) => ({ name: n, populated: false }),
    mountpoint: (n) => `/volumes/${n}`,
    awaitsCopyUp: () => true,
    markPopulated: async () => undefined,
    acquire: async () => undefined,
    release: async () => undefined,
    remove: async () => undefined,
  };
}
