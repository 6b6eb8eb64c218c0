/**
 * Vitest configuration.
 *
 * - Tests live in `test/**\/*.test.ts`: `test/unit` needs no root; integration tests run as root on
 *   the real kernel. `test/cgroup2` runs only in the cgroup v2 guest (`vitest.cgroup2.config.ts`).
 * - Each test file runs in its own forked process (`pool: 'forks'`), several at once: the kernel
 *   calls berth makes (unshare, setns, mount) act on a process or a thread, which worker threads
 *   would share. Files run in parallel, so every test must use its own engine root (see
 *   `test/helpers/tmp.ts`).
 * - `test/helpers/global-setup.ts` builds the busybox test image once and exports its paths in
 *   `BERTH_TEST_BUSYBOX_TAR` / `BERTH_TEST_BUSYBOX_DIR` (and `inject('busyboxImage')`).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Runs only on a cgroup-v2-only kernel: vitest.cgroup2.config.ts, in the guest of scripts/cgroup2-vm.
    exclude: ['test/cgroup2/**', '**/node_modules/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 60_000,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
