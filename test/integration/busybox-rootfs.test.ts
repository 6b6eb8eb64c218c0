/**
 * `buildBusyboxRootfs`, the exported helper that makes an image to try berth with from the host's
 * static busybox (the README's first snippet uses it). Needs root (the tree is chowned) and
 * Debian's busybox-static.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BerthError, buildBusyboxRootfs } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('buildBusyboxRootfs', () => {
  it("builds the same tarball twice, byte for byte, with the tree GNU tar lists (busybox, its applet links, passwd, app's home)", async () => {
    const a = await buildBusyboxRootfs(join(tempDir('busybox-a'), 'out'));
    const b = await buildBusyboxRootfs(join(tempDir('busybox-b'), 'out'));
    expect(readFileSync(a.tar).equals(readFileSync(b.tar))).toBe(true);

    const listing = execFileSync('tar', ['-tvf', a.tar, '--numeric-owner'], { encoding: 'utf8' }).split('\n');
    const line = (name: string): string | undefined =>
      listing.find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} -> `));
    expect(line('bin/busybox')).toMatch(/^-rwxr-xr-x 0\/0 /);
    expect(line('bin/sh')).toMatch(/^lrwxrwxrwx 0\/0 .* bin\/sh -> \/bin\/busybox$/);
    expect(line('etc/passwd')).toMatch(/^-rw-r--r-- 0\/0 /);
    expect(line('home/app/')).toMatch(/^drwxr-xr-x 1000\/1000 /);
    expect(line('tmp/')).toMatch(/^drwxrwxrwt 0\/0 /);
  });

  it('refuses a busybox that is not there with NOT_FOUND naming it, before creating anything', async () => {
    const out = join(tempDir('busybox-missing'), 'out');
    const err = await buildBusyboxRootfs(out, { busybox: '/nonexistent/busybox' }).catch((e: unknown) => e);
    expect(BerthError.is(err) && err.code).toBe('NOT_FOUND');
    expect((err as Error).message).toContain('/nonexistent/busybox');
    expect(existsSync(out)).toBe(false);
  });
});
