/**
 * The image the benchmarks run: the same cached busybox rootfs the tests use (see
 * `test/helpers/busybox.ts`), built on first use.
 *
 * @module
 */
import { busyboxImage, type BusyboxRootfs } from '../../test/helpers/busybox.js';

export type { BusyboxRootfs };

/**
 * The busybox rootfs as `{ dir, tar }`: `tar` for `Image.import`, `dir` for peers that take a
 * rootfs directory (crun, runc). Both are shared and read-only: copy before changing.
 *
 * @example
 * ```ts
 * const { tar } = await benchRootfs();
 * await Image.import(tar, { ref: 'bench/busybox:latest', engine });
 * ```
 */
export function benchRootfs(): Promise<BusyboxRootfs> {
  return busyboxImage();
}
