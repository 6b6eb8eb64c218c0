/**
 * Pulling a real image, measured in one run (median of 5, each into an empty root):
 *
 * - **berth pull** of a Debian minbase image (~175 MB, ~6 700 files, 3 gzip layers) from Debian's
 *   `docker-registry` on 127.0.0.1 — when `Image.prototype.pull` exists;
 * - **berth load** of an OCI archive holding the same gzip layers: the same unpack work (gunzip,
 *   blob digest, diffID, hostile-safe writes) without HTTP. When pull is missing it stands in;
 * - **`tar -xzf`** of the same layers, one after the other, each into its own directory: the
 *   floor. The target is berth ≤ 1.2× the floor. A parallel `tar -xzf` row is shown too, since
 *   berth unpacks layers in parallel;
 * - `skopeo copy` and `podman pull` of the same image, when installed.
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

/** Times `fn` RUNS times (after one warm-up run), each in a fresh directory removed (untimed) after. */
async function measure(name: string, fn: (dir: string) => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const dir = join(work, `${name.replace(/\W+/g, '-')}-${i}`);
    fs.mkdirSync(dir, { recursive: true });
    spawnSync('sync');
    const start = process.hrtime.bigint();
    await fn(dir);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (i > 0) samples.push(ms); // run 0 warms caches
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return samples;
}

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

function manifestOf(img: BenchImage): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(img.config.toString()), size: img.config.length },
    layers: img.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  });
}

/** An OCI archive of the image with its gzip layers, for `Image.load`. */
async function ociArchive(img: BenchImage, file: string): Promise<void> {
  const manifest = manifestOf(img);
  const index = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MANIFEST_TYPE, digest: sha(manifest), size: Buffer.byteLength(manifest), annotations: { 'io.containerd.image.name': 'docker.io/bench/debian:latest' } }] });
  async function* members(): AsyncGenerator<Buffer> {
    const small = (name: string, body: Buffer): Buffer[] => [encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }), body, Buffer.alloc((512 - (body.length % 512)) % 512)];
    yield* small('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    for (const l of img.layers) {
      yield encodeHeader({ name: `blobs/sha256/${l.digest.slice(7)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: l.size, mtime: 0 });
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
  return [name, (m / 1000).toFixed(2), `${(min / 1000).toFixed(2)}–${(max / 1000).toFixed(2)}`, samples.length, `${(m / floor).toFixed(2)}×`, note];
}

async function main(): Promise<void> {
  const img = benchImage();
  const total = img.layers.reduce((s, l) => s + l.tarSize, 0);
  const gz = img.layers.reduce((s, l) => s + l.size, 0);
  console.log(`image: Debian bookworm minbase, ${img.layers.length} gzip layers, ${(total / 1e6).toFixed(0)} MB uncompressed (${(gz / 1e6).toFixed(0)} MB gzip), ${img.entries} entries; ${RUNS} runs each, medians`);

  const registry = await startRegistry(join(work, 'registry'));
  try {
    for (const l of img.layers) await pushBlob(registry.host, REPO, l.digest, l.path, l.size);
    await pushBlob(registry.host, REPO, sha(img.config.toString()), img.config, img.config.length);
    await pushManifest(registry.host, REPO, 'latest', MANIFEST_TYPE, manifestOf(img));
    const archive = join(work, 'debian.oci.tar');
    await ociArchive(img, archive);

    const results: Cell[][] = [['what', 'median s', 'min–max s', 'runs', '× floor', 'note']];
    const floor = await measure('tar', async (dir) => {
      for (const [i, l] of img.layers.entries()) {
        fs.mkdirSync(join(dir, String(i)));
        await run('tar', ['-xzf', l.path, '-C', join(dir, String(i))]);
      }
    });
    const floorMs = median(floor);
    const parallelTar = await measure('tar-par', (dir) =>
      Promise.all(img.layers.map(async (l, i) => {
        fs.mkdirSync(join(dir, String(i)));
        await run('tar', ['-xzf', l.path, '-C', join(dir, String(i))]);
      })).then(() => undefined),
    );

    let pullSamples: number[] | undefined;
    let pullNote = '';
    const hasPull = typeof (Image.prototype as unknown as { pull?: unknown }).pull === 'function';
    if (hasPull) {
      try {
        pullSamples = await measure('berth-pull', async (dir) => {
          const engine = new Engine({ root: dir, runRoot: join(dir, 'run') });
          try {
            await (new Image(`${registry.host}/${REPO}:latest`, { engine }) as unknown as { pull(): PromiseLike<unknown> }).pull();
          } finally {
            engine.close();
          }
        });
      } catch (e) {
        pullNote = `pull failed: ${(e as Error).message.slice(0, 120)}`;
      }
    } else pullNote = 'Image.prototype.pull does not exist yet';
    const loadSamples = await measure('berth-load', async (dir) => {
      const engine = new Engine({ root: dir, runRoot: join(dir, 'run') });
      try {
        await Image.load(archive, { engine });
      } finally {
        engine.close();
      }
    });

    results.push(row(`berth pull (registry on ${registry.host})`, pullSamples, floorMs, pullNote));
    results.push(row('berth Image.load (same gzip layers, OCI archive)', loadSamples, floorMs, pullSamples === undefined ? 'stand-in for pull: same unpack, no HTTP' : 'unpack without HTTP'));
    results.push(row('tar -xzf, layer after layer (floor)', floor, floorMs));
    results.push(row('tar -xzf, 3 layers in parallel', parallelTar, floorMs));
    results.push(row('skopeo copy', undefined, floorMs, which('skopeo') ? 'installed, not measured: needs a policy.json and an oci: target' : 'not installed'));
    results.push(row('podman pull', undefined, floorMs, which('podman') ? 'installed, not measured here' : 'not installed'));
    console.log(formatTable(results));
    const best = pullSamples ?? loadSamples;
    const ratio = median(best) / floorMs;
    console.log(`\nberth ${pullSamples ? 'pull' : 'load'} / tar floor = ${ratio.toFixed(2)}× (target ≤ 1.20×)${ratio <= 1.2 ? '' : ' — MISSED'}`);
  } finally {
    await registry.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
