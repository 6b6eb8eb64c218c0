/**
 * `logs({ follow: true })` of a container whose log rotates fast (`maxSize: '16k'`, `maxFile: 2`: a
 * rotation every few hundred lines, each one dropping the file before), followed from the start of
 * its output until it exits: every line comes out exactly once, in the order written, for both
 * writers (the zygote for an attached container, `berth-monitor` for a detached one). A follower
 * that falls further behind than the files kept loses lines, and says so (`lost`), without
 * repeating any.
 */
import { describe, expect, it } from 'vitest';
import { Container, type LogLine } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';

/** Blocks of 100 numbers, one `seq` each: about 400 KiB of log, some 25 rotations. */
const BLOCKS = 600;

/** Waits for `/go` (the follower is reading by then), then prints 0 … BLOCKS × 100 − 1 in blocks of 100. */
const SCRIPT =
  'echo ready; while [ ! -e /go ]; do usleep 10000; done; ' +
  `i=0; while [ $i -lt ${BLOCKS} ]; do seq $((i*100)) $((i*100+99)); i=$((i+1)); usleep 20000; done`;

/** Runs {@link SCRIPT} with a log of 16 KiB files, 2 kept; returns it and its follower, which has read `ready`. */
async function startFollowed(detach: boolean): Promise<{ c: Container; follow: AsyncIterator<LogLine> }> {
  const { engine } = await testEngine();
  const c = await Container.run(BUSYBOX_REF, ['sh', '-c', SCRIPT], {
    ...NO_NETWORK,
    engine,
    detach,
    log: { maxSize: '16k', maxFile: 2 },
  });
  const follow = c.logs({ follow: true })[Symbol.asyncIterator]();
  // The first line: the follower has opened the log, before any of the numbers is written.
  const first = await follow.next();
  expect(first.done ? undefined : first.value.text).toBe('ready\n');
  return { c, follow };
}

/** The rest of a follow, until the container has exited and its log is drained. */
async function rest(follow: AsyncIterator<LogLine>): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for (let r = await follow.next(); !r.done; r = await follow.next()) lines.push(r.value);
  return lines;
}

const all = Array.from({ length: BLOCKS * 100 }, (_, i) => `${i}\n`);

describe('logs({ follow }) across fast rotations', () => {
  for (const detach of [false, true]) {
    const writer = detach ? 'detached: berth-monitor rotates' : 'attached: the zygote rotates';

    it(`a follower that keeps up gets every line of a log rotated every 16 KiB with 2 files kept exactly once, in order, none marked lost, from the start of the output until the exit (${writer})`, async () => {
      const { c, follow } = await startFollowed(detach);
      // Reading on at once: the output starts while the exec is still being waited for.
      const following = rest(follow);
      expect((await c.exec(['touch', '/go'])).exitCode).toBe(0);
      const lines = await following;
      expect((await c.wait()).exitCode).toBe(0);
      const texts = lines.map((l) => l.text);
      // The first line that differs, for a readable failure, then the whole sequence.
      const bad = all.findIndex((w, i) => texts[i] !== w);
      expect(bad >= 0 ? { at: bad, got: texts.slice(bad, bad + 3) } : undefined).toBeUndefined();
      expect(texts).toEqual(all);
      expect(lines.filter((l) => l.lost)).toEqual([]);
      // It rotated: the first line is no longer kept.
      expect((await c.logs()).startsWith('ready\n')).toBe(false);
    });

    it(`a follower that stops reading while the log rotates many times goes on with the lines still kept, in order, none twice, and marks the first line after the missing ones lost (${writer})`, async () => {
      const { c, follow } = await startFollowed(detach);
      expect((await c.exec(['touch', '/go'])).exitCode).toBe(0);
      // Not reading until the program has exited: its ~25 rotations dropped the file the follower was in.
      expect((await c.wait()).exitCode).toBe(0);
      const lines = await rest(follow);
      const texts = lines.map((l) => l.text);
      // The rest of the file it was in (held open), then a jump to the oldest file still kept.
      const gap = texts.findIndex((t, i) => t !== all[i]);
      expect(gap).toBeGreaterThan(0);
      const resumed = all.indexOf(texts[gap]!);
      expect(resumed).toBeGreaterThan(gap);
      expect(texts.slice(gap)).toEqual(all.slice(resumed));
      expect(lines.map((l, i) => (l.lost ? i : -1)).filter((i) => i >= 0)).toEqual([gap]);
    });
  }
});
