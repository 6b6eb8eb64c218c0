/**
 * The output cap of a container's log (`maxOutput`, `keep` on create): what `logs()` keeps of a
 * program that prints megabytes, attached (written by the zygote) and detached (by the monitor),
 * and the streams `inspect().state.outputTruncated` reports.
 */
import { describe, expect, it } from 'vitest';
import { Container, InvalidArgumentError } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';

/** The cap of these tests: 128 KiB per stream. */
const CAP = 128 * 1024;
/** What `seq 1 LINES` prints (about 6.9 MB). */
const LINES = 1_000_000;
const seqText = (() => {
  const parts: string[] = [];
  for (let i = 1; i <= LINES; i++) parts.push(`${i}\n`);
  return parts.join('');
})();

/** Runs `command` with the cap and returns its exit code, each stream's logged text and the truncated flags. */
async function capped(command: string, keep: 'head' | 'tail', detach: boolean, maxOutput = CAP) {
  const { engine } = await testEngine();
  const c = await Container.run(BUSYBOX_REF, ['sh', '-c', command], {
    engine,
    ...NO_NETWORK,
    maxOutput,
    keep,
    detach,
  });
  // A writer that stopped reading would leave the program blocked on a full pipe: it ends instead.
  const { exitCode } = await c.wait({ timeout: 120_000 });
  const info = await c.inspect();
  return {
    exitCode,
    stdout: await c.logs({ stderr: false }),
    stderr: await c.logs({ stdout: false }),
    truncated: info.state.outputTruncated,
  };
}

describe.each([
  ['attached', false],
  ['detached', true],
] as const)('output cap of a %s container', (_, detach) => {
  it("keep 'head': exactly the first maxOutput bytes of each stream of yes | head -c 10M; both reported truncated", async () => {
    const r = await capped('yes | head -c 10485760; yes e | head -c 3000000 >&2', 'head', detach);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('y\n'.repeat(CAP / 2));
    expect(r.stderr).toBe('e\n'.repeat(CAP / 2));
    expect(r.truncated).toEqual({ stdout: true, stderr: true });
  }, 180_000);

  it("keep 'tail': the end of seq 1 1000000, between maxOutput (less the first partial line) and 3 × maxOutput + 192 KiB; a quiet stderr kept whole and not reported", async () => {
    const r = await capped(`echo start >&2; seq 1 ${LINES}; echo end >&2`, 'tail', detach);
    expect(r.exitCode).toBe(0);
    expect(seqText.endsWith(r.stdout)).toBe(true);
    // logs() drops a line cut by a dropped record (at most one line of seq, 8 bytes).
    expect(r.stdout.length).toBeGreaterThanOrEqual(CAP - 8);
    expect(r.stdout.length).toBeLessThanOrEqual(3 * CAP + 192 * 1024);
    expect(r.stderr).toBe('start\nend\n');
    expect(r.truncated).toEqual({ stdout: true });
  }, 180_000);

  it("keep 'tail' of two interleaved streams of lines of varied lengths (both past the cap, 16 KiB): each keeps a suffix of its own output within the bounds", async () => {
    const cap = 16 * 1024;
    const pads = ['', 'x'.repeat(40), 'x'.repeat(400), 'x'.repeat(1200)];
    // stdout long lines first while stderr's are short, then the other way round.
    const script =
      `p0=''; p1='${pads[1]}'; p2='${pads[2]}'; p3='${pads[3]}'; i=0; while [ $i -lt 3000 ]; do ` +
      `eval "echo \\"o$i \\$p$((i < 1500 ? i % 4 : 0))\\""; ` +
      `eval "echo \\"e$i \\$p$((i < 1500 ? 0 : i % 4))\\"" >&2; i=$((i+1)); done`;
    const r = await capped(script, 'tail', detach, cap);
    expect(r.exitCode).toBe(0);
    const want = { stdout: '', stderr: '' };
    for (let i = 0; i < 3000; i++) {
      want.stdout += `o${i} ${pads[i < 1500 ? i % 4 : 0]}\n`;
      want.stderr += `e${i} ${pads[i < 1500 ? 0 : i % 4]}\n`;
    }
    for (const s of ['stdout', 'stderr'] as const) {
      expect(want[s].endsWith(r[s]), s).toBe(true);
      // logs() drops a line cut by a dropped record (a line here is at most 1206 bytes).
      expect(r[s].length, s).toBeGreaterThanOrEqual(cap - 1206);
      expect(r[s].length, s).toBeLessThanOrEqual(3 * cap + 192 * 1024);
    }
    expect(r.truncated).toEqual({ stdout: true, stderr: true });
  }, 180_000);

  it('reports nothing truncated for output under the cap', async () => {
    const r = await capped('echo out; echo err >&2', 'head', detach);
    expect([r.stdout, r.stderr, r.truncated]).toEqual(['out\n', 'err\n', undefined]);
  }, 60_000);
});

describe('output cap options', () => {
  it.each([
    [{ maxOutput: 0 }, 'maxOutput'],
    [{ maxOutput: -1 }, 'maxOutput'],
    [{ maxOutput: 1.5 }, 'maxOutput'],
    [{ maxOutput: '10' }, 'maxOutput'],
    [{ maxOutput: 10, keep: 'middle' }, 'keep'],
    [{ maxOutput: 10, keep: 'tail', log: { maxFile: 2 } }, 'log'],
  ])('refuses %j with InvalidArgumentError naming %s, creating nothing', async (bad, field) => {
    const { engine } = await testEngine({ image: false });
    const err = await Container.create({ image: BUSYBOX_REF, engine, ...(bad as object) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ field });
    expect(await Container.list({ engine, all: true })).toEqual([]);
  });
});
