/**
 * A minimal {@link RuntimeSpec} for unit tests of the plan builders: `true` as root in a new
 * network namespace with Docker's default capabilities, over stand-in overlay paths.
 *
 * @module
 */
import { DEFAULT_CAPABILITIES } from '../../src/container/defaults.js';
import type { RuntimeSpec } from '../../src/runtime/plan.js';

/** What a test may change: any field of the spec, the overlay's lower dirs and the process's env. */
export type RuntimeSpecOverrides = Partial<RuntimeSpec> & { lowerDirs?: string[]; env?: string[] };

/** The spec, with `over` applied (default lower dirs `/l2`, `/l1`; empty env). */
export function runtimeSpecFixture({
  lowerDirs = ['/l2', '/l1'],
  env = [],
  ...over
}: RuntimeSpecOverrides = {}): RuntimeSpec {
  return {
    id: 'c1',
    hostname: 'h',
    rootfs: { lowerDirs, upperDir: '/u', workDir: '/w', mountPoint: '/m', readOnly: false },
    binds: [],
    network: 'new',
    process: {
      args: ['true'],
      env,
      cwd: '/',
      user: '',
      noNewPrivileges: false,
      capabilities: [...DEFAULT_CAPABILITIES],
    },
    ...over,
  };
}
