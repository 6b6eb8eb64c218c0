/**
 * Snapshot and fork of a container's file system (issue 16), standalone: the table of
 * `lib/snapshot-fork.ts` for a 1 MB and a 100 MB file system, on a temporary root in the system's
 * temp directory (its file system decides whether the snapshot's copy can use reflinks).
 *
 * Usage: `npx tsx bench/snapshot.ts [runs]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, Image } from '../src/index.js';
import { benchRootfs } from './lib/busybox.js';
import { benchSnapshotFork } from './lib/snapshot-fork.js';
import { formatTable } from './lib/stats.js';

const RUNS = Math.max(3, Number(process.argv[2] ?? 10));
const root = mkdtempSync(join(tmpdir(), 'berth-bench-snapshot-'));
const engine = new Engine({ root, runRoot: join(root, 'run') });
const IMAGE = 'bench/busybox:latest';

try {
  await Image.import((await benchRootfs()).tar, { ref: IMAGE, engine });
  const rows = await benchSnapshotFork(engine, { image: IMAGE, runs: RUNS });
  console.log(`snapshot and fork (median of ${RUNS} runs, network none)\n`);
  console.log(
    formatTable([
      ['file system', 'snapshot ms', 'fork + start ms', 'plain run ms'],
      ...rows.map((r) => [`${r.mb} MB`, r.snapshotMs.toFixed(1), r.forkStartMs.toFixed(1), r.plainRunMs.toFixed(1)]),
    ]),
  );
} finally {
  engine.close();
  rmSync(root, { recursive: true, force: true });
}
