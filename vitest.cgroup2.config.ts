/**
 * Vitest configuration for the cgroup v2 guest (`npm run test:cgroup2`, scripts/cgroup2-vm/test.sh):
 * the smoke program and the integration tests that touch cgroups — limits, resources, devices,
 * pause, OOM — and the bridge network (veth, bridge, nf_tables on a stock Debian kernel), run on a
 * cgroup-v2-only kernel under software emulation. Timeouts are raised for the emulation (10–20×
 * slower than the host).
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// Not mergeConfig: it would append this include list to the base's (the whole suite).
export default defineConfig({
  // Kept between guest runs (scripts/cgroup2-vm/test.sh shares it): test durations order the files.
  ...(process.env.BERTH_VITEST_CACHE_DIR ? { cacheDir: process.env.BERTH_VITEST_CACHE_DIR } : {}),
  test: {
    ...base.test,
    include: [
      'test/cgroup2/*.test.ts',
      'test/integration/container-resources.test.ts',
      'test/integration/cgroups-kernel.test.ts',
      'test/integration/cgroups-v2-devices.test.ts',
      'test/security/devices.test.ts',
      'test/security/limits.test.ts',
      'test/integration/network-bridge.test.ts',
    ],
    exclude: [],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    teardownTimeout: 300_000,
  },
});
