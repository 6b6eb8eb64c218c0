/**
 * The output cap of a container's log (`maxOutput` and `keep` on create): the rule, in one place,
 * that both writers follow — `LogWriter` (`log-writer.ts`, the zygote, for attached runs) and
 * `berth-monitor` (`monitor/monitor.c`, for detached runs: `mon_head_kept`, `mon_tail_rotates`,
 * `mon_tail_drops`, keep them in step). Counted in bytes of each stream's own output (stdout and
 * stderr apart), per run.
 *
 * - `head`: the first `maxOutput` bytes of each stream are logged; the rest is read from the pipe
 *   and dropped (the program never waits for it).
 * - `tail`: at least the last `maxOutput` bytes of each stream are kept (all of a stream that
 *   wrote less), at most `3 × maxOutput + 192 KiB` of each. The log is then at most three files:
 *   `output.log` (the current one), `output.log.1` and `output.log.2`. The current file is
 *   rotated before a chunk would take one stream past `maxOutput` bytes in it ({@link tailRotates});
 *   at a rotation `output.log.1` is replaced by the current file, and `output.log.2` by the
 *   records of the other stream (the one that did not fill the file) from the old `.2` and `.1`
 *   that it still needs to hold its last `maxOutput` bytes (the oldest dropped first while the
 *   rest still holds enough, {@link tailDrops}). The rotation of `log: { maxSize, maxFile }` does
 *   not apply.
 *
 * A stream that lost bytes is reported in the exit record (`outputTruncated`), and so in
 * `inspect().state.outputTruncated` once the run ended.
 *
 * @module
 */

/** Which streams an output cap cut: a stream that lost bytes has `true`. */
export interface OutputTruncated {
  /** stdout lost bytes. */
  stdout?: true;
  /** stderr lost bytes. */
  stderr?: true;
}

/** Which part of an over-long stream is kept. */
export type KeepPart = 'head' | 'tail';

/** The files a log with a `tail` cap has at most: `output.log`, `.1` and `.2`. */
export const TAIL_LOG_FILES = 3;

/** `head`: how many bytes of a chunk of `n` are logged when `kept` bytes of its stream were logged already. */
export function headKept(kept: number, n: number, max: number): number {
  return Math.max(0, Math.min(n, max - kept));
}

/** `tail`: whether a chunk of `n` bytes starts a new file, its stream having `inCurrent` bytes in the current one. */
export function tailRotates(inCurrent: number, n: number, max: number): boolean {
  return inCurrent > 0 && inCurrent + n > max;
}

/**
 * `tail`, at a rotation: whether the oldest carried record of a stream (`size` bytes) is dropped,
 * `rest` being the stream's bytes in it and every carried record after it, and `newer` its bytes
 * in the file that becomes `.1`: dropped while what stays still holds the last `max` bytes.
 */
export function tailDrops(rest: number, size: number, newer: number, max: number): boolean {
  return rest - size + newer >= max;
}
