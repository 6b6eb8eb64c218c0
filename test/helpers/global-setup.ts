/**
 * Vitest global setup: runs once in the main vitest process, before any test file.
 *
 * It builds the busybox test image (see `test/helpers/busybox.ts`) and publishes its paths two ways:
 *
 * - `process.env.BERTH_TEST_BUSYBOX_TAR` and `process.env.BERTH_TEST_BUSYBOX_DIR`, which the forked
 *   test processes inherit — what `busyboxImage()` reads, and what shell snippets can use;
 * - `inject('busyboxImage')` (vitest's provide/inject), typed below, `undefined` when busybox is
 *   not installed.
 *
 * When `/bin/busybox` is missing it prints why and sets nothing, so unit tests still run; tests
 * that need the image then fail in `busyboxImage()` with a message that says what to install.
 *
 * @module
 */
import type { TestProject } from 'vitest/node';
import {
  BUSYBOX_DIR_ENV,
  BUSYBOX_TAR_ENV,
  DEFAULT_BUSYBOX,
  ensureBusyboxCache,
  hasBusybox,
  type BusyboxRootfs,
} from './busybox.js';

declare module 'vitest' {
  /** Values that global setup provides to tests through `inject()`. */
  export interface ProvidedContext {
    /** The cached busybox rootfs, or `undefined` when busybox is not installed. */
    busyboxImage: BusyboxRootfs | undefined;
  }
}

/** Builds the busybox image once and exports its paths; see the module documentation. */
export default async function setup(project: TestProject): Promise<void> {
  if (!hasBusybox()) {
    console.warn(
      `[berth tests] ${DEFAULT_BUSYBOX} not found: integration tests that need the busybox image will fail. ` +
        'Install it with: bash scripts/install-deps.sh',
    );
    project.provide('busyboxImage', undefined);
    return;
  }
  const image = await ensureBusyboxCache();
  process.env[BUSYBOX_TAR_ENV] = image.tar;
  process.env[BUSYBOX_DIR_ENV] = image.dir;
  project.provide('busyboxImage', image);
}
