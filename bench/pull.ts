/**
 * Pulling a real image, measured in one run (median of 5, each into an empty root):
 *
 * - **berth pull** of a Debian minbase image (~180 MB, ~6 700 entries, 3 gzip layers) from Debian's
 *   `docker-registry` on 127.0.0.1 — when `Image.prototype.pull` exists;
 * - **berth load** of an OCI archive holding the same gzip layers: the same unpack work (gunzip,
 *   blob digest, diffID, hostile-safe writes) without HTTP. When pull is missing it stands in;
 * - **`tar -xzf`** of the same layers, one after the other, each into its own directory: the
 *   floor. The target is berth ≤ 1.2× the floor. A parallel `tar -xzf` row is shown too, since
 *   berth unpacks layers in parallel;
 * - `skopeo copy` and `podman pull` of the same image, when installed.
 *
 * Where the time goes (CPU profiles of pull and load on the project's VM, ext4): creating the files
 * — `open(O_CREAT)`, `mkdir`, `symlink` — takes ~70% of berth's main thread, ~200 µs per file, the
 * same per-file cost `strace -c` shows for `tar`; inflating (~0.35 s), the two sha256 (blob digest
 * and diffID, ~0.15 s each) and writing data are the rest. The unpacker makes these calls
 * synchronously on one thread, so layers unpacked "in parallel" share that thread, while the
 * parallel `tar` row gets the kernel's work onto both CPUs.
 *
 * Usage: `npx tsx bench/pull.ts [runs]` (part of `npm run bench`). The rootfs and layers are built
 * once per machine under `/var/cache/berth-bench` (see `lib/debian-image.ts`).
 *
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Engine, Image } from '../src/index.js';
import { encodeHeader, END_OF_ARCHIVE } from '../src/image/tar-writer.js';
import { benchImage, type BenchImage } from './lib/debian-image.js';
import { pushBlob, pushManifest, startRegistry } from './lib/local-registry.js';
import { formatTable, median, minMax, type Cell } from './lib/stats.js';

const RUNS = Math.max(1, Number(process.argv[2] ?? 5));
const REPO = 'bench/debian';
const work = fs.mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));

const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

/** A contender: work timed in a fresh, empty directory. */
interface Contender {
  name: string;
  fn: (dir: string) => Promise<void>;
  samples: number[];
  error?: string;
}

/**
 * Times every contender RUNS times (after one warm-up round), round-robin so that background load
 * on the machine falls on all of them alike; each run gets a fresh directory, removed (untimed)
 * after, with a `sync` before the clock starts. A contender that fails is dropped with its error.
 */
async function measure(contenders: Contender[]): Promise<void> {
  for (let i = 0; i <= RUNS; i++) {
    for (const c of contenders) {
      if (c.error !== undefined) continue;
      const dir = join(work, `${c.name}-${i}`);
      fs.mkdirSync(dir, { recursive: true });
      spawnSync('sync');
      const start = process.hrtime.bigint();
      try {
        await c.fn(dir);
        if (i > 0) c.samples.push(Number(process.hrtime.bigint() - start) / 1e6); // round 0 warms caches
      } catch (e) {
        c.error = (e as Error).message.replace(/\s+/g, ' ').slice(0, 110);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

function manifestOf(img: BenchImage): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha(img.config.toString()),
      size: img.config.length,
    },
    layers: img.layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: l.digest,
      size: l.size,
    })),
  });
}

/** An OCI archive of the image with its gzip layers, for `Image.load`. */
async function ociArchive(img: BenchImage, file: string): Promise<void> {
  const manifest = manifestOf(img);
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [
      {
        mediaType: MANIFEST_TYPE,
        digest: sha(manifest),
        size: Buffer.byteLength(manifest),
        annotations: { 'io.containerd.image.name': 'docker.io/bench/debian:latest' },
      },
    ],
  });
  async function* members(): AsyncGenerator<Buffer> {
    const small = (name: string, body: Buffer): Buffer[] => [
      encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }),
      body,
      Buffer.alloc((512 - (body.length % 512)) % 512),
    ];
    yield* small('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    for (const l of img.layers) {
      yield encodeHeader({
        name: `blobs/sha256/${l.digest.slice(7)}`,
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: l.size,
        mtime: 0,
      });
      for await (const c of fs.createReadStream(l.path, { highWaterMark: 1 << 20 })) yield c as Buffer;
      yield Buffer.alloc((512 - (l.size % 512)) % 512);
    }
    yield* small(`blobs/sha256/${sha(img.config.toString()).slice(7)}`, img.config);
    yield* small(`blobs/sha256/${sha(manifest).slice(7)}`, Buffer.from(manifest));
    yield* small('index.json', Buffer.from(index));
    yield END_OF_ARCHIVE;
  }
  await pipeline(members(), fs.createWriteStream(file));
}

function row(name: string, samples: number[] | undefined, floor: number, note = ''): Cell[] {
  if (samples === undefined) return [name, '', '', '', '', note];
  const { min, max } = minMax(samples);
  const m = median(samples);
  return [
    name,
    (m / 1000).toFixed(2),
    `${(min / 1000).toFixed(2)}–${(max / 1000).toFixed(2)}`,
    samples.length,
    `${(m / floor).toFixed(2)}×`,
    note,
  ];
}

async function main(): Promise<void> {
  const img = benchImage();
  const total = img.layers.reduce((s, l) => s + l.tarSize, 0);
  const gz = img.layers.reduce((s, l) => s + l.size, 0);
  const sizes = `${(total / 1e6).toFixed(0)} MB uncompressed (${(gz / 1e6).toFixed(0)} MB gzip)`;
  console.log(
    `image: Debian bookworm minbase, ${img.layers.length} gzip layers, ${sizes}, ${img.entries} entries; ${RUNS} runs each, medians`,
  );

  const registry = await startRegistry(join(work, 'registry'));
  try {
    for (const l of img.layers) await pushBlob(registry.host, REPO, l.digest, l.path, l.size);
    await pushBlob(registry.host, REPO, sha(img.config.toString()), img.config, img.config.length);
    await pushManifest(registry.host, REPO, 'latest', MANIFEST_TYPE, manifestOf(img));
    const archive = join(work, 'debian.oci.tar');
    await ociArchive(img, archive);

    const results: Cell[][] = [['what', 'median s', 'min–max s', 'runs', '× floor', 'note']];
    const tarLayer = async (dir: string, i: number, path: string): Promise<void> => {
      fs.mkdirSync(join(dir, String(i)));
      await run('tar', ['-xzf', path, '-C', join(dir, String(i))]);
    };
    const inRoot = async (dir: string, fn: (engine: Engine) => PromiseLike<unknown>): Promise<void> => {
      const engine = new Engine({ root: dir, runRoot: join(dir, 'run') });
      try {
        await fn(engine);
      } finally {
        engine.close();
      }
    };
    const floor: Contender = {
      name: 'tar',
      samples: [],
      fn: async (dir) => {
        for (const [i, l] of img.layers.entries()) await tarLayer(dir, i, l.path);
      },
    };
    const parallelTar: Contender = {
      name: 'tar-par',
      samples: [],
      fn: async (dir) => void (await Promise.all(img.layers.map((l, i) => tarLayer(dir, i, l.path)))),
    };
    const load: Contender = {
      name: 'load',
      samples: [],
      fn: (dir) => inRoot(dir, (engine) => Image.load(archive, { engine })),
    };
    const hasPull = typeof (Image.prototype as unknown as { pull?: unknown }).pull === 'function';
    const pull: Contender = {
      name: 'pull',
      samples: [],
      fn: (dir) =>
        inRoot(dir, (engine) =>
          (
            new Image(`${registry.host}/${REPO}:latest`, { engine }) as unknown as { pull(): PromiseLike<unknown> }
          ).pull(),
        ),
      ...(hasPull ? {} : { error: 'Image.prototype.pull does not exist yet' }),
    };
    await measure([floor, pull, load, parallelTar]);
    if (floor.error !== undefined) throw new Error(`tar failed: ${floor.error}`);
    const floorMs = median(floor.samples);
    const pulled = pull.error === undefined && pull.samples.length > 0;
    results.push(
      row(
        `berth pull (registry on ${registry.host})`,
        pulled ? pull.samples : undefined,
        floorMs,
        pull.error === undefined ? '' : `not measured: ${pull.error}`,
      ),
    );
    results.push(
      row(
        'berth Image.load (same gzip layers, OCI archive)',
        load.error === undefined ? load.samples : undefined,
        floorMs,
        load.error ?? (pulled ? 'same unpack, no HTTP' : 'stand-in for pull: same unpack, no HTTP'),
      ),
    );
    results.push(row('tar -xzf, layer after layer (floor)', floor.samples, floorMs));
    results.push(row('tar -xzf, 3 layers in parallel', parallelTar.samples, floorMs));
    results.push(
      row(
        'skopeo copy',
        undefined,
        floorMs,
        which('skopeo') ? 'installed, not measured: needs a policy.json and an oci: target' : 'not installed',
      ),
    );
    results.push(
      row('podman pull', undefined, floorMs, which('podman') ? 'installed, not measured here' : 'not installed'),
    );
    console.log(formatTable(results));
    const best = pulled ? pull.samples : load.samples;
    if (best.length === 0) throw new Error(`berth failed: ${load.error ?? 'no samples'}`);
    const ratio = median(best) / floorMs;
    console.log(
      `\nberth ${pulled ? 'pull' : 'load'} / tar floor = ${ratio.toFixed(2)}× (target ≤ 1.20×)${ratio <= 1.2 ? '' : ' — MISSED'}`,
    );
  } finally {
    await registry.stop();
  }
}

try {
  await main();
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
