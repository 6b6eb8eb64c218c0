/**
 * `Image.build`, measured in one run:
 *
 * - **cold build** of a realistic multi-stage Dockerfile (a builder stage that compiles with
 *   several RUN steps and copies the sources, a runtime stage that copies the result, a user, a
 *   workdir and the run settings) into an empty root, median of RUNS;
 * - **cached rebuild** of the same Dockerfile and context on the same root: every step from the
 *   cache. Target ≤ 100 ms;
 * - **context transfer**: a context of 5,000 small files plus one 50 MB file copied into an image
 *   by one `COPY . /ctx`, cold (no cache), in MB/s of context. Target ≥ 500 MB/s. The floor is
 *   `cp -a` of the same context into a fresh directory on the same file system;
 * - `podman build` / `buildah bud` of the same Dockerfile and context, when installed (a cold build
 *   with `--no-cache`, a cached rebuild), beside berth. Target: berth's cold build ≤ 0.8× podman's.
 *
 * The base image is the busybox test image, imported into each root (and into podman's storage
 * from the same tarball, when podman is installed).
 *
 * Usage: `npx tsx bench/build.ts [runs]` (part of `npm run bench`).
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, Image } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { formatTable, median, minMax, type Cell } from './lib/stats.js';

const RUNS = Math.max(1, Number(process.argv[2] ?? 5));
const work = fs.mkdtempSync(join(tmpdir(), 'berth-bench-build-'));
const BASE = 'bench/busybox:latest';
/**
 * The OCI runtime podman builds with: runc, since Debian's crun refuses a hybrid cgroup layout
 * ("cgroups in hybrid mode not supported"); crun where runc is missing.
 */
const PODMAN_RUNTIME = spawnSync('sh', ['-c', 'command -v runc'], { stdio: 'ignore' }).status === 0 ? 'runc' : 'crun';

const DOCKERFILE = `
FROM ${BASE} AS build
ARG VERSION=1.0
WORKDIR /src
COPY src/ ./
RUN mkdir -p /out && for f in *.c; do sed 's/^/compiled: /' "$f" > "/out/\${f%.c}.o"; done
RUN cat /out/*.o | grep -c compiled > /out/lines && echo "$VERSION" > /out/version
RUN tar -cf /out/app.tar -C /out .

FROM ${BASE}
RUN echo "app:x:1000:1000::/app:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group
WORKDIR /app
COPY --from=build --chown=app /out/app.tar /app/
RUN tar -xf app.tar && rm app.tar
USER app
ENV MODE=production
EXPOSE 8080
CMD ["cat", "/app/version"]
`;

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function appContext(): string {
  const dir = join(work, 'app');
  fs.mkdirSync(join(dir, 'src'), { recursive: true });
  for (let i = 0; i < 40; i++)
    fs.writeFileSync(join(dir, 'src', `m${i}.c`), `int f${i}(void) { return ${i}; }\n`.repeat(50));
  fs.writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
  return dir;
}

function bigContext(): { dir: string; bytes: number } {
  const dir = join(work, 'big');
  let bytes = 0;
  for (let d = 0; d < 50; d++) {
    fs.mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) {
      const body = `file ${d}/${f}\n`.repeat(20);
      fs.writeFileSync(join(dir, `d${d}`, `f${f}.txt`), body);
      bytes += body.length;
    }
  }
  const big = Buffer.alloc(50 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.writeFileSync(join(dir, 'blob.bin'), big);
  bytes += big.length;
  fs.writeFileSync(join(dir, 'Dockerfile'), `FROM ${BASE}\nCOPY . /ctx\n`);
  return { dir, bytes };
}

async function newEngine(name: string): Promise<Engine> {
  const root = join(work, name);
  const engine = new Engine({ root, runRoot: join(root, 'run') });
  await Image.import((await benchRootfs()).tar, { ref: BASE, engine });
  return engine;
}

function timeSync(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function row(name: string, samples: number[], note = ''): Cell[] {
  if (samples.length === 0) return [name, '', '', '', note];
  const { min, max } = minMax(samples);
  return [name, Number(median(samples).toFixed(1)), Number(min.toFixed(1)), Number(max.toFixed(1)), note];
}

async function main(): Promise<void> {
  const app = appContext();
  const big = bigContext();
  const cold: number[] = [];
  const cached: number[] = [];
  const transfer: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const engine = await newEngine(`root-${i}`);
    try {
      spawnSync('sync');
      cold.push(await time(() => Image.build({ engine, context: app, tag: 'bench/app:1' })));
      cached.push(await time(() => Image.build({ engine, context: app, tag: 'bench/app:1' })));
      spawnSync('sync');
      transfer.push(await time(() => Image.build({ engine, context: big.dir, noCache: true })));
    } finally {
      engine.close();
      fs.rmSync(join(work, `root-${i}`), { recursive: true, force: true });
    }
    const dest = join(work, `cp-${i}`);
    spawnSync('sync');
    floor.push(timeSync(() => spawnSync('cp', ['-a', big.dir, dest])));
    fs.rmSync(dest, { recursive: true, force: true });
  }
  const rows: Cell[][] = [['build', 'median ms', 'min', 'max', 'note']];
  rows.push(row('berth cold multi-stage build', cold));
  rows.push(row('berth fully cached rebuild', cached, 'target ≤ 100 ms'));
  const peer = which('podman') ? 'podman' : which('buildah') ? 'buildah' : undefined;
  if (peer !== undefined) {
    const tarPath = (await benchRootfs()).tar;
    spawnSync(peer, ['import', tarPath, BASE], { stdio: 'ignore' });
    const args = (noCache: boolean): string[] =>
      peer === 'podman'
        ? [
            '--runtime',
            PODMAN_RUNTIME,
            'build',
            '--pull=never',
            '--network=none',
            ...(noCache ? ['--no-cache'] : []),
            '-q',
            '-t',
            'bench/app:1',
            app,
          ]
        : ['bud', '--pull=never', '--network=none', ...(noCache ? ['--no-cache'] : []), '-q', '-t', 'bench/app:1', app];
    const peerCold: number[] = [];
    const peerCached: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      peerCold.push(timeSync(() => spawnSync(peer, args(true), { stdio: 'ignore' })));
      peerCached.push(timeSync(() => spawnSync(peer, args(false), { stdio: 'ignore' })));
    }
    rows.push(
      row(
        `${peer} (${PODMAN_RUNTIME}) cold build (--no-cache)`,
        peerCold,
        `berth/${peer} ${(median(cold) / median(peerCold)).toFixed(2)} (target ≤ 0.8)`,
      ),
    );
    rows.push(row(`${peer} cached rebuild`, peerCached));
  } else rows.push(['podman / buildah', '', '', '', 'not installed']);
  console.log(formatTable(rows));
  const mbs = (ms: number): number => Number((big.bytes / 1e6 / (ms / 1000)).toFixed(0));
  console.log('');
  console.log(
    formatTable([
      ['context transfer (5,000 files + 50 MB)', 'median ms', 'MB/s', 'note'],
      ['berth COPY . (cold build)', Number(median(transfer).toFixed(1)), mbs(median(transfer)), 'target ≥ 500 MB/s'],
      ['floor: cp -a', Number(median(floor).toFixed(1)), mbs(median(floor)), ''],
    ]),
  );
}

try {
  await main();
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
