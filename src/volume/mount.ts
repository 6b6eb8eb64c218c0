/**
 * Mounts and unmounts a local volume's file system on its `_data`, as its driver options say
 * (`type`, `o`, `device`: see `service.ts`). Kernel calls only; the volume service decides when,
 * under the volume's lock.
 *
 * @module
 */
import { statSync } from 'node:fs';
import { mount, umount2 } from '../kernel/mount.js';
import { loopDevicesBackedBy, withLoop } from '../kernel/loop.js';
import { MNT_DETACH, MS_BIND, MS_NODEV, MS_NOSUID } from '../kernel/constants.js';

/**
 * Mounts the file system the driver options `options` describe on `target`: a tmpfs, a bind of
 * `device`, or `device` (a block device, or an image file through a loop device).
 */
export async function mountVolume(
  target: string,
  options: { type?: string; o?: string; device?: string },
): Promise<void> {
  const { type, o = '', device } = options;
  if (type !== 'tmpfs' && type !== 'none' && statSync(device!).isFile()) {
    // The image's previous mount may still live in an exited container's mount namespace,
    // which goes away just after the exit: a second mount meanwhile (through another loop
    // device) would not see the data the first has not written back yet. Wait for it.
    const deadline = Date.now() + 5000;
    while (loopDevicesBackedBy(device!).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }
  const opts = o.split(',').filter(Boolean);
  if (type === 'tmpfs') mount('tmpfs', target, 'tmpfs', MS_NOSUID | MS_NODEV, opts.join(',') || null);
  else if (type === 'none') mount(device!, target, null, MS_BIND, null);
  else {
    // An image file is mounted through a loop device (o=loop, or any regular file).
    const data = opts.filter((x) => x !== 'loop').join(',') || null;
    if (statSync(device!).isFile()) withLoop(device!, (dev) => mount(dev, target, type!, 0, data));
    else mount(device!, target, type!, 0, data);
  }
}

/** Unmounts a volume's file system from `target` (lazily: a container may still hold it). */
export function unmountVolume(target: string): void {
  umount2(target, MNT_DETACH);
}
