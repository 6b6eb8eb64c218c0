/**
 * COPY as the executor runs it: the step's rootfs is a detached overlay mount (reached only as
 * `/proc/self/fd/N`) over a hostile lower layer, with a fresh upper dir that becomes the layer.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mountDetachedOverlay } from '../../src/container/fs/copy.js';
import { copyInto, digestSources, resolveChown } from '../../src/image/build/context/index.js';
import { closeFd } from '../../src/runtime/host.js';
import { tempDir } from '../helpers/tmp.js';

/** Runs `fn` with a detached overlay of a fresh upper dir over `lower`; returns the upper dir. */
async function withOverlay(lower: string, fn: (root: string) => Promise<void>): Promise<string> {
  const base = tempDir('build-overlay');
  const upper = join(base, 'upper');
  const work = join(base, 'work');
  fs.mkdirSync(upper);
  fs.mkdirSync(work);
  const fd = mountDetachedOverlay(upper, work, [lower]);
  try {
    await fn(`/proc/self/fd/${fd}`);
  } finally {
    closeFd(fd);
  }
  return upper;
}

describe('copyInto on a detached overlay rootfs', () => {
  it('writes into the upper dir, resolving a lower layer’s escaping symlinks inside the rootfs', async () => {
    const base = tempDir('build-overlay-lower');
    const lower = join(base, 'lower');
    const outside = join(base, 'outside');
    const ctx = join(base, 'ctx');
    for (const d of [lower, outside, ctx, join(lower, 'etc')]) fs.mkdirSync(d);
    fs.symlinkSync('/../../../outside', join(lower, 'app'));
    fs.writeFileSync(join(lower, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:33:44::/var/www:/bin/sh\n');
    fs.writeFileSync(join(ctx, 'index.html'), 'hi');
    let owner = { uid: -1, gid: -1 };
    const upper = await withOverlay(lower, async (root) => {
      owner = await resolveChown(root, 'web');
      await copyInto({ sourceRoot: ctx, sources: ['index.html'], destRoot: root, dest: '/app/', chown: owner });
    });
    expect(owner).toEqual({ uid: 33, gid: 44 });
    expect(fs.readdirSync(outside)).toEqual([]);
    const st = fs.statSync(join(upper, 'outside/index.html'));
    expect([st.uid, st.gid]).toEqual([33, 44]);
  });

  it('reads a COPY --from source out of a rootfs mount, following a symlink source inside it only', async () => {
    const base = tempDir('build-overlay-from');
    const lower = join(base, 'lower');
    const host = join(base, 'host');
    fs.mkdirSync(join(lower, 'out'), { recursive: true });
    fs.mkdirSync(host);
    fs.writeFileSync(join(lower, 'out/bin'), 'BIN');
    fs.chownSync(join(lower, 'out/bin'), 5, 6);
    fs.writeFileSync(join(host, 'secret'), 'HOST');
    fs.symlinkSync(join(host, 'secret'), join(lower, 'leak'));
    const dest = tempDir('build-overlay-dest');
    await withOverlay(lower, async (root) => {
      await copyInto({ sourceRoot: root, sources: ['/out'], destRoot: dest, dest: '/', keepOwners: true });
      await expect(copyInto({ sourceRoot: root, sources: ['leak'], destRoot: dest, dest: '/leak' })).rejects.toThrow(
        /not found/,
      );
      expect(await digestSources({ sourceRoot: root, sources: ['/out'] })).toMatch(/^sha256:[0-9a-f]{64}$/);
    });
    const st = fs.statSync(join(dest, 'bin'));
    expect([fs.readFileSync(join(dest, 'bin'), 'utf8'), st.uid, st.gid]).toEqual(['BIN', 5, 6]);
    expect(fs.existsSync(join(dest, 'leak'))).toBe(false);
  });
});
