/**
 * Snapshot and fork figures (issue 16): for a running container whose file system holds `mb`
 * megabytes it wrote itself (`dd` from `/dev/urandom`, 10 MB a file), the median time of
 * `c.snapshot()` (pause, copy of its upper dir, unpause), of `Container.run(snapshot, ['true'])`
 * (create and start of a fork: resolves once its program runs), and of a plain
 * `Container.run(image, ['true'])` beside it. A fork's time must not grow with the snapshot's size.
 *
 * Every container runs with network `none`, so the figures are the file system's and the start's,
 * not the bridge's. Removals are not timed.
 *
 * @module
 */
import { Container, type Engine, type Snapshot } from '../../src/index.js';
import { median, timeIt } from './stats.js';

/** One size's figures, in ms (medians). */
export interface SnapshotForkRow {
  /** Megabytes the source container wrote. */
  mb: number;
  /** `c.snapshot()` of the running source. */
  snapshotMs: number;
  /** `Container.run(snapshot, ['true'])`: create and start of a fork. */
  forkStartMs: number;
  /** `Container.run(image, ['true'])` of the source's image. */
  plainRunMs: number;
}

/** Options of {@link benchSnapshotFork}. */
export interface SnapshotForkOptions {
  /** The image (imported in `engine`) the containers run; it needs `sh`, `dd` and `true`. */
  image: string;
  /** Sizes to measure, in MB. Default `[1, 100]`. */
  sizesMb?: number[];
  /** Measured runs per figure. Default 10. */
  runs?: number;
}

const NONE = { network: 'none' } as const;

/** The source: writes `mb` MB in files of at most 10 MB, marks it done, then idles. */
async function seeded(engine: Engine, image: string, mb: number): Promise<Container> {
  const files = Math.ceil(mb / 10);
  const script = [
    'mkdir -p /data',
    ...Array.from({ length: files }, (_, i) => {
      const count = Math.min(10, mb - i * 10);
      return `dd if=/dev/urandom of=/data/f${i} bs=1M count=${count} 2>/dev/null`;
    }),
    'touch /ready',
    'exec sleep 1d',
  ].join(' && ');
  return Container.run(image, ['sh', '-c', script], {
    engine,
    ...NONE,
    waitFor: { exec: ['test', '-e', '/ready'], timeout: 120_000 },
  });
}

/**
 * Measures snapshot, fork and plain run for each size (see the module).
 *
 * @example
 * ```ts
 * const rows = await benchSnapshotFork(engine, { image: 'bench/busybox:latest' });
 * console.log(formatTable([['MB', 'snapshot ms', 'fork+start ms', 'run ms'], ...rows.map((r) => [r.mb, r.snapshotMs, r.forkStartMs, r.plainRunMs])]));
 * ```
 */
export async function benchSnapshotFork(engine: Engine, options: SnapshotForkOptions): Promise<SnapshotForkRow[]> {
  const runs = options.runs ?? 10;
  const rows: SnapshotForkRow[] = [];
  for (const mb of options.sizesMb ?? [1, 100]) {
    const source = await seeded(engine, options.image, mb);
    try {
      const taken: Snapshot[] = [];
      const snapshot = await timeIt(async () => taken.push(await source.snapshot()), runs);
      const snap = taken.pop()!;
      for (const s of taken) await s.remove();
      const forks: Container[] = [];
      const fork = await timeIt(async () => forks.push(await Container.run(snap, ['true'], { engine, ...NONE })), runs);
      const plain = await timeIt(
        async () => forks.push(await Container.run(options.image, ['true'], { engine, ...NONE })),
        runs,
      );
      for (const c of forks) await c.remove({ force: true });
      await snap.remove({ force: true });
      rows.push({ mb, snapshotMs: median(snapshot), forkStartMs: median(fork), plainRunMs: median(plain) });
    } finally {
      await source.remove({ force: true });
    }
  }
  return rows;
}
