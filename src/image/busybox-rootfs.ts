/**
 * {@link buildBusyboxRootfs}: a tiny but real Linux root filesystem made from the host's static
 * busybox (Debian's and Ubuntu's `busybox-static`: one binary, `/bin/busybox`), as a directory and
 * as a plain (uncompressed) `.tar` ready for `Image.import`. No network, no registry: this is how
 * the README, the examples, the tests and the benchmarks get an image on a machine that reaches
 * nothing.
 *
 * The tree: `bin sbin usr/bin usr/sbin etc tmp(1777) root(0700) home/app var proc sys dev`,
 * `bin/busybox` and a symlink to it for every applet it lists (`busybox --list-full`, less the
 * top-level `linuxrc`), `etc/hostname`, and
 * `etc/passwd`, `etc/group` with these accounts:
 *
 * | user     | uid   | gid   | home      | groups                  |
 * |----------|-------|-------|-----------|-------------------------|
 * | root     | 0     | 0     | /root     | root                    |
 * | daemon   | 1     | 1     | /usr/sbin | daemon                  |
 * | nobody   | 65534 | 65534 | /nonexistent | nogroup              |
 * | app      | 1000  | 1000  | /home/app | app, extra (gid 2000)   |
 *
 * Everything is owned by 0:0 except `home/app`, which belongs to `app` (1000:1000) as a user's home
 * does. The tar (written by berth's own tar writer, `packDirectory`) lists the same tree with
 * the same modes and owners, sorted, directories before their contents, symlinks as symlink
 * entries; every entry's mtime is set to a fixed date first, so the same busybox gives the same
 * bytes (and the same image id).
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, chown, copyFile, lutimes, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError } from '../errors.js';
import { packDirectory } from './tar-writer.js';

/** Where Debian's and Ubuntu's `busybox-static` package installs the binary. */
export const DEFAULT_BUSYBOX = '/bin/busybox';

/** Bumped whenever the tree or the tarball this module builds changes, so caches keyed on it are rebuilt. */
export const BUSYBOX_ROOTFS_VERSION = 2;

/** The mtime of every entry: fixed, so that the tarball is reproducible. */
const MTIME = new Date('2024-01-01T00:00:00Z');

/** Paths of a root filesystem made by {@link buildBusyboxRootfs}. */
export interface BusyboxRootfs {
  /** The root filesystem as a directory. */
  dir: string;
  /** The same tree as a plain `.tar` file (no compression). */
  tar: string;
}

/** Options for {@link buildBusyboxRootfs}. */
export interface BusyboxRootfsOptions {
  /** The static busybox binary to install. Absent: `/bin/busybox`. */
  busybox?: string;
}

const DIRS: ReadonlyArray<readonly [path: string, mode: number]> = [
  ['bin', 0o755],
  ['sbin', 0o755],
  ['usr', 0o755],
  ['usr/bin', 0o755],
  ['usr/sbin', 0o755],
  ['etc', 0o755],
  ['tmp', 0o1777],
  ['root', 0o700],
  ['home', 0o755],
  ['home/app', 0o755],
  ['var', 0o755],
  ['var/tmp', 0o1777],
  ['proc', 0o555],
  ['sys', 0o555],
  ['dev', 0o755],
];

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`;

const GROUP = `root:x:0:
daemon:x:1:
app:x:1000:
extra:x:2000:app
nogroup:x:65534:
`;

/**
 * Builds a busybox root filesystem into `outDir/rootfs` and its tarball into `outDir/rootfs.tar`,
 * from the host's static busybox: an image to try berth with on a machine that reaches no
 * registry. Either path can be given to `Image.import`.
 *
 * `outDir` is created if missing; `outDir/rootfs` must not exist yet or be empty. Run as root (the
 * tree is chowned to 0:0 and 1000:1000). The busybox must be a static one (Debian and Ubuntu:
 * `apt-get install busybox-static`): a dynamically linked binary would not find its libraries in
 * the container.
 *
 * @param outDir - Directory that receives `rootfs/` and `rootfs.tar`.
 * @param options - See {@link BusyboxRootfsOptions}.
 * @returns The paths of the directory and the tarball.
 * @throws NotFoundError (`NOT_FOUND`) when the busybox binary is missing or does not run.
 *
 * @example
 * ```ts
 * import { Container, Image, buildBusyboxRootfs } from 'berth';
 *
 * const { tar } = await buildBusyboxRootfs('/tmp/bb'); // /tmp/bb/rootfs.tar
 * await Image.import(tar, { ref: 'local/busybox' });
 * const c = await Container.run('local/busybox', ['echo', 'hello']);
 * ```
 */
export async function buildBusyboxRootfs(outDir: string, options: BusyboxRootfsOptions = {}): Promise<BusyboxRootfs> {
  const busybox = options.busybox ?? DEFAULT_BUSYBOX;
  const applets = listApplets(busybox);
  const dir = join(outDir, 'rootfs');
  const tarPath = join(outDir, 'rootfs.tar');
  await mkdir(dir, { recursive: true });

  for (const [path, mode] of DIRS) {
    await mkdir(join(dir, path), { recursive: true });
    await chmod(join(dir, path), mode); // mkdir's mode is filtered by the umask; chmod is not
  }
  await chown(join(dir, 'home/app'), 1000, 1000);

  await copyFile(busybox, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  for (const applet of applets) {
    if (applet === 'bin/busybox') continue;
    const target = join(dir, applet);
    await mkdir(dirname(target), { recursive: true });
    await symlink('/bin/busybox', target).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }

  await writeFile(join(dir, 'etc/passwd'), PASSWD, { mode: 0o644 });
  await writeFile(join(dir, 'etc/group'), GROUP, { mode: 0o644 });
  await writeFile(join(dir, 'etc/hostname'), 'busybox\n', { mode: 0o644 });

  await fixTimes(dir);
  await pipeline(Readable.from(packDirectory(dir)), createWriteStream(tarPath, { mode: 0o644 }));
  return { dir, tar: tarPath };
}

/** Paths of every applet relative to `/` (`bin/sh`, `usr/bin/awk`, …), from `busybox --list-full`. */
function listApplets(busybox: string): string[] {
  const r = existsSync(busybox) ? spawnSync(busybox, ['--list-full'], { encoding: 'utf8' }) : undefined;
  if (!r || r.error || r.status !== 0) {
    const why = !r ? 'it does not exist' : r.error ? r.error.message : `exit status ${r.status}: ${r.stderr}`;
    throw new NotFoundError(
      'path',
      busybox,
      `cannot run ${busybox} --list-full (${why}); install a static busybox (Debian/Ubuntu: apt-get install busybox-static) or pass options.busybox`,
      r?.error ? { cause: r.error } : undefined,
    );
  }
  return (
    r.stdout
      .split('\n')
      .map((l) => l.trim())
      // `linuxrc` (an initrd hook at `/`) is left out: only applets inside a directory are linked.
      .filter((l) => l.includes('/') && !l.startsWith('/') && !l.split('/').includes('..'))
  );
}

/** Sets the mtime (and atime) of `dir` and everything under it, symlinks included, to {@link MTIME}; children first. */
async function fixTimes(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await fixTimes(path);
    else await lutimes(path, MTIME, MTIME);
  }
  await lutimes(dir, MTIME, MTIME);
}
