/**
 * The busybox test image: a real root filesystem made from Debian's `busybox-static`, built once
 * per machine and shared by every test file.
 *
 * Vitest's global setup (`test/helpers/global-setup.ts`) builds it before any test runs and puts
 * its paths in `process.env.BERTH_TEST_BUSYBOX_TAR` and `process.env.BERTH_TEST_BUSYBOX_DIR`
 * (the test processes inherit them); {@link busyboxImage} returns them. Outside vitest (benchmarks,
 * scripts) {@link busyboxImage} builds the same cache itself.
 *
 * The cache lives in `os.tmpdir()/berth-test-cache/busybox-<key>/{rootfs,rootfs.tar}`, where the key
 * hashes the busybox binary and the builder's version; it is created atomically (built aside, then
 * renamed), so concurrent runs never see half of it. Treat both paths as read-only: copy the
 * directory before changing anything in it.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUSYBOX_ROOTFS_VERSION,
  DEFAULT_BUSYBOX,
  buildBusyboxRootfs,
  type BusyboxRootfs,
  type BusyboxRootfsOptions,
} from '../../src/image/busybox-rootfs.js';

export { BUSYBOX_ROOTFS_VERSION, DEFAULT_BUSYBOX, buildBusyboxRootfs };
export type { BusyboxRootfs, BusyboxRootfsOptions };

/** Environment variable holding the path of the cached busybox rootfs tarball. */
export const BUSYBOX_TAR_ENV = 'BERTH_TEST_BUSYBOX_TAR';
/** Environment variable holding the path of the cached busybox rootfs directory. */
export const BUSYBOX_DIR_ENV = 'BERTH_TEST_BUSYBOX_DIR';

/** True when the static busybox binary the image is made from is installed. */
export function hasBusybox(busybox: string = DEFAULT_BUSYBOX): boolean {
  return existsSync(busybox);
}

let pending: Promise<BusyboxRootfs> | undefined;

/**
 * The shared busybox image: `{ dir, tar }` of the cached rootfs. Reads the paths global setup
 * exported; builds the cache if they are absent (outside vitest). Repeated calls share one build.
 *
 * @throws Error when `/bin/busybox` is missing (run `scripts/install-deps.sh`).
 *
 * @example
 * ```ts
 * const { tar } = await busyboxImage();
 * const image = await Image.import(tar, { ref: 'test/busybox:latest', engine });
 * ```
 */
export function busyboxImage(): Promise<BusyboxRootfs> {
  const tar = process.env[BUSYBOX_TAR_ENV];
  const dir = process.env[BUSYBOX_DIR_ENV];
  if (tar && dir && existsSync(tar) && existsSync(dir)) return Promise.resolve({ dir, tar });
  pending ??= ensureBusyboxCache().catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

/**
 * Builds the cached rootfs if it is not there yet and returns its paths. Safe to call from several
 * processes at once: each builds aside and the first rename wins.
 *
 * @param cacheRoot - Where caches live. Absent: `os.tmpdir()/berth-test-cache`.
 */
export async function ensureBusyboxCache(
  cacheRoot: string = join(tmpdir(), 'berth-test-cache'),
  options: BusyboxRootfsOptions = {},
): Promise<BusyboxRootfs> {
  const busybox = options.busybox ?? DEFAULT_BUSYBOX;
  if (!hasBusybox(busybox)) {
    throw new Error(`${busybox} is missing; install Debian's busybox-static (bash scripts/install-deps.sh)`);
  }
  const key = (await sha256File(busybox)).slice(0, 16);
  const final = join(cacheRoot, `busybox-v${BUSYBOX_ROOTFS_VERSION}-${key}`);
  const paths = { dir: join(final, 'rootfs'), tar: join(final, 'rootfs.tar') };
  if (existsSync(paths.tar)) return paths;

  await mkdir(cacheRoot, { recursive: true });
  const aside = await mkdtemp(join(cacheRoot, '.building-'));
  try {
    await buildBusyboxRootfs(aside, { busybox });
    await rename(aside, final).catch((e: NodeJS.ErrnoException) => {
      // Another process finished first: use its copy.
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    });
  } finally {
    await rm(aside, { recursive: true, force: true });
  }
  return paths;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
