/**
 * Loop devices (<linux/loop.h>): attach an image file to a free `/dev/loopN` so it can be
 * mounted as a block device. Attached with LO_FLAGS_AUTOCLEAR: the kernel detaches the device
 * when its last user (the mount) goes away.
 *
 * @module
 */
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { libc, check } from './libc.js';
import { open, close } from './fd.js';
import { O_CLOEXEC, O_RDWR } from './constants.js';

const _ioctl = libc.func('int ioctl(int fd, unsigned long request, uintptr_t arg)');
const _ioctlPtr = libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);

const LOOP_CTL_GET_FREE = 0x4c82;
const LOOP_CONFIGURE = 0x4c0a;
/** sizeof(struct loop_config): fd, block_size, loop_info64, 8 reserved u64. */
const LOOP_CONFIG_SIZE = 8 + 232 + 64;
const LO_FLAGS_AUTOCLEAR = 4;
/** offsetof(struct loop_info64, lo_flags). */
const LO_FLAGS_OFFSET = 52;

/**
 * Attaches `file` to a free loop device (auto-clearing) and calls `use` with its path, e.g.
 * `/dev/loop3`, while holding it open: an auto-clearing device is detached as soon as nothing
 * holds it, so `use` must mount it (the mount then holds it).
 */
export function withLoop<T>(file: string, use: (device: string) => T): T {
  const ctl = open('/dev/loop-control', O_RDWR | O_CLOEXEC);
  let n: number;
  try {
    n = check('ioctl', () => _ioctl(ctl, LOOP_CTL_GET_FREE, 0), 'LOOP_CTL_GET_FREE');
  } finally {
    close(ctl);
  }
  const dev = `/dev/loop${n}`;
  const loopFd = open(dev, O_RDWR | O_CLOEXEC);
  const fileFd = open(file, O_RDWR | O_CLOEXEC);
  try {
    // LOOP_CONFIGURE sets the backing file and the flags in one step (no window where the device
    // exists without its size).
    const config = Buffer.alloc(LOOP_CONFIG_SIZE);
    config.writeUInt32LE(fileFd, 0);
    config.writeUInt32LE(LO_FLAGS_AUTOCLEAR, 8 + LO_FLAGS_OFFSET);
    check('ioctl', () => _ioctlPtr(loopFd, LOOP_CONFIGURE, config), `LOOP_CONFIGURE ${dev}`, file);
    return use(dev);
  } finally {
    close(fileFd);
    close(loopFd);
  }
}

/**
 * The loop devices (`/dev/loopN`) whose backing file is `file`: a previous mount of it that is
 * still going away (an auto-clearing device is detached only when its last mount is gone, e.g.
 * once an exited container's mount namespace is torn down).
 */
export function loopDevicesBackedBy(file: string): string[] {
  let want: string;
  try {
    want = realpathSync(file);
  } catch {
    // No backing file: no device can be backed by it.
    return [];
  }
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync('/sys/block').filter((n) => n.startsWith('loop'));
  } catch {
    // No /sys/block: no loop device to look at.
    return [];
  }
  for (const n of names) {
    try {
      if (readFileSync(`/sys/block/${n}/loop/backing_file`, 'utf8').trim() === want) out.push(`/dev/${n}`);
    } catch {
      // Not attached.
    }
  }
  return out;
}
