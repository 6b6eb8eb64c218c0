/**
 * A real Debian image for the pull benchmark: a `debootstrap --variant=minbase` root filesystem
 * (bookworm, about 180 MB and 6 700 entries without its downloaded packages), split into three gzip
 * layers (`/usr`; `/var` + `/etc`; the rest) with an OCI config. Built once per machine under
 * `/var/cache/berth-bench` (rootfs and layers are each built aside, then renamed into place).
 *
 * debootstrap downloads from the Debian mirror apt is configured with (read from
 * `/etc/apt/sources.list*`), the one network source these machines reach.
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';

/** Where the rootfs and layers are cached. */
export const CACHE_DIR = process.env.BERTH_BENCH_CACHE ?? '/var/cache/berth-bench';
const SUITE = 'bookworm';
const ROOTFS = join(CACHE_DIR, `debian-${SUITE}-minbase`);
const LAYERS_VERSION = 1;

/** One gzip layer of the image. */
export interface BenchLayer {
  /** The gzip file. */
  path: string;
  /** sha256 of the gzip file (the blob digest). */
  digest: string;
  /** Size of the gzip file in bytes. */
  size: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Uncompressed tar size in bytes. */
  tarSize: number;
}

/** The benchmark image. */
export interface BenchImage {
  /** The root filesystem it was made from. */
  rootfs: string;
  /** Its layers, bottom first. */
  layers: BenchLayer[];
  /** The config JSON. */
  config: Buffer;
  /** Number of files, directories and links in the rootfs. */
  entries: number;
}

/** The Debian mirror apt uses here (`URIs:` of a deb822 source or a `deb` line), else deb.debian.org. */
export function debianMirror(): string {
  const files = [
    '/etc/apt/sources.list',
    ...listDir('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)),
  ];
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const m = /^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(https?:\/\/\S+\/debian)\/?(?:\s|$)/.exec(line);
      if (m) return m[1] as string;
    }
  }
  return 'http://deb.debian.org/debian';
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function buildRootfs(): void {
  if (fs.existsSync(join(ROOTFS, 'etc/os-release'))) return;
  if (spawnSync('sh', ['-c', 'command -v debootstrap'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('debootstrap is not installed; run `npm run setup` (scripts/install-deps.sh) first');
  }
  const tmp = `${ROOTFS}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const mirror = debianMirror();
  console.log(`building the Debian ${SUITE} minbase rootfs with debootstrap from ${mirror} (once per machine)…`);
  execFileSync('debootstrap', ['--variant=minbase', SUITE, tmp, mirror], { stdio: ['ignore', 'ignore', 'inherit'] });
  fs.renameSync(tmp, ROOTFS);
}

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(path, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return `sha256:${h.digest('hex')}`;
}

/** The layers' contents: paths relative to the rootfs (GNU tar arguments). */
function layerPaths(): string[][] {
  const top = fs.readdirSync(ROOTFS).sort();
  return [['usr'], ['etc', 'var'], top.filter((n) => !['usr', 'etc', 'var'].includes(n)).map((n) => n)];
}

/** Whether the Debian rootfs is built on this machine already. */
export function debianRootfsCached(): boolean {
  return fs.existsSync(join(ROOTFS, 'etc/os-release'));
}

/** Builds (or reuses) the Debian minbase rootfs; returns its directory (shared: never change it). */
export function debianRootfs(): string {
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  buildRootfs();
  return ROOTFS;
}

/** Builds (or reuses) the rootfs and its layers. */
export function benchImage(): BenchImage {
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  buildRootfs();
  const dir = join(CACHE_DIR, `layers-v${LAYERS_VERSION}`);
  const meta = join(dir, 'layers.json');
  if (!fs.existsSync(meta)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    const layers: BenchLayer[] = layerPaths().map((paths, i) => {
      const tar = join(tmp, `${i}.tar`);
      execFileSync('tar', [
        '-C',
        ROOTFS,
        '--sort=name',
        '--numeric-owner',
        '--xattrs',
        '--exclude=./var/cache/apt/archives/*.deb',
        '--exclude=var/cache/apt/archives/*.deb',
        '-cf',
        tar,
        ...paths,
      ]);
      const diffId = sha256File(tar);
      const tarSize = fs.statSync(tar).size;
      execFileSync('gzip', ['-6', '-n', tar]);
      const path = join(dir, `${i}.tar.gz`);
      return { path, digest: sha256File(`${tar}.gz`), size: fs.statSync(`${tar}.gz`).size, diffId, tarSize };
    });
    fs.writeFileSync(join(tmp, 'layers.json'), JSON.stringify(layers));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }
  const layers = JSON.parse(fs.readFileSync(meta, 'utf8')) as BenchLayer[];
  const created = '2024-01-01T00:00:00Z';
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      created,
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created, created_by: `debootstrap --variant=minbase ${SUITE} (layer ${i})` })),
    }),
  );
  const entries =
    Number(
      execFileSync('sh', [
        '-c',
        `find '${ROOTFS}' -path '${ROOTFS}/var/cache/apt/archives/*.deb' -prune -o -print | wc -l`,
      ])
        .toString()
        .trim(),
    ) - 1;
  return { rootfs: ROOTFS, layers, config, entries };
}
