/**
 * Small helpers for berth's benchmarks: timing, summary statistics, memory (PSS) and plain-text
 * tables. No dependencies.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';

/**
 * The median of `samples` (the mean of the two middle values for an even count).
 *
 * @throws RangeError when `samples` is empty.
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('median of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * The `p`-th percentile of `samples` (nearest rank: the smallest sample with at least `p`% of
 * the samples at or below it), e.g. `percentile(s, 95)` for the p95.
 *
 * @throws RangeError when `samples` is empty or `p` is not in 0–100.
 * @example
 * ```ts
 * percentile([1, 2, 3, 4], 50); // 2
 * ```
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0–100, got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * The smallest and largest of `samples`.
 *
 * @throws RangeError when `samples` is empty.
 * @example
 * ```ts
 * minMax([3, 1, 2]); // { min: 1, max: 3 }
 * ```
 */
export function minMax(samples: readonly number[]): { min: number; max: number } {
  if (samples.length === 0) throw new RangeError('minMax of no samples');
  let min = Infinity;
  let max = -Infinity;
  for (const s of samples) {
    if (s < min) min = s;
    if (s > max) max = s;
  }
  return { min, max };
}

/** Options for {@link timeIt}. */
export interface TimeItOptions {
  /** Runs before measuring, to warm caches and the JIT. Absent: 1. */
  warmup?: number;
}

/**
 * Runs `fn` `runs` times, one after the other, and returns each run's duration in milliseconds,
 * sorted ascending (so `samples[0]` is the fastest, and {@link median} is cheap to read).
 *
 * @param fn - The work to time; awaited when it returns a promise.
 * @param runs - How many measured runs.
 * @param options - See {@link TimeItOptions}.
 * @example
 * ```ts
 * const samples = await timeIt(() => container.exec(['true']), 50);
 * console.log(`median ${median(samples).toFixed(2)} ms`);
 * ```
 */
export async function timeIt(fn: () => unknown, runs: number, options: TimeItOptions = {}): Promise<number[]> {
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`runs must be a positive integer, got ${runs}`);
  for (let i = 0; i < (options.warmup ?? 1); i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return samples.sort((a, b) => a - b);
}

/**
 * The proportional set size (PSS) of process `pid` in KiB, from `/proc/PID/smaps_rollup`: its
 * private memory plus its share of memory it shares with other processes, so the PSS of several
 * processes adds up to what they cost together.
 *
 * @throws Error when the process is gone or the kernel has no `smaps_rollup` (Linux < 4.14).
 * @example
 * ```ts
 * console.log(`${await pssOfPid(process.pid)} KiB`);
 * ```
 */
export async function pssOfPid(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const match = /^Pss:\s+(\d+)\s+kB$/m.exec(text);
  if (!match) throw new Error(`no Pss line in /proc/${pid}/smaps_rollup`);
  return Number(match[1]);
}

/** A table cell: strings are left-aligned, numbers right-aligned. */
export type Cell = string | number;

/**
 * Formats rows as an aligned plain-text table: the first row is the header, followed by a rule.
 * Numbers are right-aligned, everything else left-aligned; missing cells are blank.
 *
 * @example
 * ```ts
 * console.log(formatTable([
 *   ['engine', 'median ms'],
 *   ['berth', 4.2],
 *   ['crun', 3.9],
 * ]));
 * // engine  median ms
 * // ------  ---------
 * // berth         4.2
 * // crun          3.9
 * ```
 */
export function formatTable(rows: readonly (readonly Cell[])[]): string {
  if (rows.length === 0) return '';
  const columns = Math.max(...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, c) => Math.max(...rows.map((r) => String(r[c] ?? '').length)));
  const line = (row: readonly Cell[]): string =>
    widths
      .map((w, c) => {
        const cell = row[c];
        const text = String(cell ?? '');
        return typeof cell === 'number' ? text.padStart(w) : text.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  const [header, ...body] = rows as [readonly Cell[], ...(readonly Cell[])[]];
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
