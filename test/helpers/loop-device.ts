/**
 * A host block device for device-access tests: a loop device attached to a 64 KiB temp file
 * (filled with a known text), so that a test may read a real block device of the host without
 * touching a disk. The device is auto-clearing and held by an fd of this process: releasing it
 * detaches it, and {@link TestLoopDevice.release} waits until the kernel has done so.
 *
 * @module
 */
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopDevicesBackedBy, withLoop } from '../../src/kernel/loop.js';

/** An attached loop device. */
export interface TestLoopDevice {
  /** Its node, e.g. `/dev/loop3`. */
  path: string;
  /** Its major number (7). */
  major: number;
  /** Its minor number. */
  minor: number;
  /** Detaches it, removes the backing file, and throws if the device is still attached 5 s later. */
  release(): Promise<void>;
}

/** Attaches a loop device to a fresh 64 KiB temp file (needs root and `/dev/loop-control`). */
export function attachTestLoopDevice(): TestLoopDevice {
  const dir = mkdtempSync(join(tmpdir(), 'berth-loopdev-'));
  const file = join(dir, 'disk.img');
  writeFileSync(file, Buffer.alloc(64 * 1024, 'host disk bytes '));
  let attached: { path: string; fd: number };
  try {
    attached = withLoop(file, (dev) => ({ path: dev, fd: openSync(dev, 'r') }));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const rdev = statSync(attached.path).rdev;
  return {
    path: attached.path,
    major: (rdev >> 8) & 0xfff,
    minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    async release() {
      closeSync(attached.fd);
      const deadline = Date.now() + 5000;
      while (loopDevicesBackedBy(file).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const left = loopDevicesBackedBy(file);
      rmSync(dir, { recursive: true, force: true });
      if (left.length > 0) throw new Error(`loop device ${left.join(', ')} still attached to ${file}`);
    },
  };
}
