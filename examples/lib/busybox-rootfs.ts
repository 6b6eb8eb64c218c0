/**
 * Builds a tiny but real Linux root filesystem from Debian's `busybox-static` (one static binary,
 * `/bin/busybox`), as a directory and as a plain (uncompressed) `.tar` ready for
 * `Image.import`. No network, no registry: this is how the examples, tests and benchmarks get an
 * image on a machine that reaches nothing.
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
 * does. The tar lists the same tree with the same modes and owners, directories before their
 * contents, symlinks as symlink entries, and a fixed mtime so the same busybox gives the same bytes.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, chown, copyFile, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/** Where Debian's and Ubuntu's `busybox-static` package installs the binary. */
export const DEFAULT_BUSYBOX = '/bin/busybox';

/** Bumped whenever the tree this module builds changes, so caches keyed on it are rebuilt. */
export const BUSYBOX_ROOTFS_VERSION = 1;

/** The header fields this module sets on a tar entry. */
type TarHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;

/** The mtime of every tar entry: fixed, so that the tarball is reproducible. */
const MTIME = new Date('2024-01-01T00:00:00Z');

/** Paths of a built rootfs. */
export interface BusyboxRootfs {
  /** The root filesystem as a directory. */
  dir: string;
  /** The same tree as a plain `.tar` file (no compression). */
  tar: string;
}

/** Options for {@link buildBusyboxRootfs}. */
export interface BusyboxRootfsOptions {
  /** The static busybox binary to install. Absent: {@link DEFAULT_BUSYBOX}. */
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
 * Builds the rootfs into `outDir/rootfs` and its tarball into `outDir/rootfs.tar`.
 *
 * `outDir` is created if missing; `outDir/rootfs` must not exist yet or be empty. Run as root (the
 * tree is chowned to 0:0 and 1000:1000).
 *
 * @param outDir - Directory that receives `rootfs/` and `rootfs.tar`.
 * @param options - See {@link BusyboxRootfsOptions}.
 * @returns The paths of the directory and the tarball.
 * @throws Error when the busybox binary is missing (install Debian's `busybox-static`).
 *
 * @example
 * ```ts
 * import { buildBusyboxRootfs } from './lib/busybox-rootfs.js';
 * const { dir, tar } = await buildBusyboxRootfs('/tmp/bb');
 * // dir = /tmp/bb/rootfs, tar = /tmp/bb/rootfs.tar
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

  await writeTar(dir, tarPath);
  return { dir, tar: tarPath };
}

/** Paths of every applet relative to `/` (`bin/sh`, `usr/bin/awk`, …), from `busybox --list-full`. */
function listApplets(busybox: string): string[] {
  const r = spawnSync(busybox, ['--list-full'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit status ${r.status}: ${r.stderr}`;
    throw new Error(
      `cannot run ${busybox} --list-full (${why}); install a static busybox (Debian/Ubuntu: apt-get install busybox-static)`,
      { cause: r.error },
    );
  }
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    // `linuxrc` (an initrd hook at `/`) is left out: only applets inside a directory are linked.
    .filter((l) => l.includes('/') && !l.startsWith('/') && !l.split('/').includes('..'));
}

/** Writes `dir` as a plain tar at `tarPath`: sorted, directories before their contents. */
async function writeTar(dir: string, tarPath: string): Promise<void> {
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(tarPath, { mode: 0o644 }));
  try {
    await addTree(pack, dir, '');
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    await written.catch(() => {});
    throw e;
  }
  await written;
}

async function addTree(pack: tar.Pack, root: string, rel: string): Promise<void> {
  const names = (await readdir(join(root, rel))).sort();
  for (const name of names) {
    const relPath = rel === '' ? name : posix.join(rel, name);
    const abs = join(root, relPath);
    const st = await lstat(abs);
    const header = { name: relPath, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, uname: '', gname: '', mtime: MTIME };
    if (st.isDirectory()) {
      await entry(pack, { ...header, name: `${relPath}/`, type: 'directory' });
      await addTree(pack, root, relPath);
    } else if (st.isSymbolicLink()) {
      await entry(pack, { ...header, type: 'symlink', linkname: await readlink(abs) });
    } else if (st.isFile()) {
      await entry(pack, { ...header, type: 'file', size: st.size }, await readFile(abs));
    } else {
      throw new Error(`unexpected file type in rootfs: ${abs}`);
    }
  }
}

function entry(pack: tar.Pack, header: TarHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const callback = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (body) pack.entry(header, body, callback);
    else pack.entry(header, callback);
  });
}
