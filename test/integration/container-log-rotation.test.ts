/**
 * Log rotation on the real kernel (`log: { maxSize, maxFile }`): the writer of a container's log
 * (the zygote for an attached container, `berth-monitor` for a detached one) keeps it within
 * `maxSize × maxFile`, `logs()` reads across the rotated files in order, `tail` reads only the end
 * and `follow` carries on across a rotation.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BerthError, Container } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';

/** The log file and its rotated siblings of a container, with their sizes. */
function logFiles(logPath: string): Array<{ name: string; size: number }> {
  const dir = dirname(logPath);
  const base = logPath.slice(dir.length + 1);
  return readdirSync(dir)
    .filter((n) => n === base || n.startsWith(`${base}.`))
    .map((name) => ({ name, size: statSync(`${dir}/${name}`).size }));
}

/** Checks that `text` is the numbered lines `from`…`to` (one number a line), with nothing missing. */
function expectConsecutive(text: string, to: number): number {
  const lines = text.split('\n');
  expect(lines.pop()).toBe('');
  const first = Number(lines[0]);
  expect(lines).toEqual(Array.from({ length: to - first + 1 }, (_, i) => String(first + i)));
  return first;
}

describe('log rotation', () => {
  for (const detach of [false, true]) {
    it(`keeps ${detach ? "a detached container's log (berth-monitor)" : "an attached container's log (zygote)"} within maxSize × maxFile, and logs() returns the last lines in order with none missing in the kept window`, async () => {
      const { engine } = await testEngine();
      const c = await Container.run(BUSYBOX_REF, ['seq', '1', '200000'], {
        ...NO_NETWORK,
        engine,
        detach,
        log: { maxSize: '100k', maxFile: 2 },
      });
      expect((await c.wait()).exitCode).toBe(0);
      const info = await c.inspect();
      expect(info.hostConfig.log).toEqual({ maxSize: 100 * 1024, maxFile: 2 });
      const files = logFiles(info.logPath);
      expect(files.map((f) => f.name).sort()).toEqual(['output.log', 'output.log.1']);
      const total = files.reduce((a, f) => a + f.size, 0);
      // One record (≤ 64 KiB read from the pipe) may overshoot a file's maxSize.
      expect(total).toBeLessThanOrEqual(2 * 100 * 1024 + 64 * 1024);
      const first = expectConsecutive(await c.logs(), 200000);
      // Whatever was kept is most of the 100-200 KiB: 1.2 MiB of numbers were written in all.
      expect(first).toBeGreaterThan(150000);
      expect(200000 - first).toBeGreaterThan(10000);
      expect(await c.logs({ tail: 3 })).toBe('199998\n199999\n200000\n');

      await c.remove();
      expect(existsSync(info.logPath)).toBe(false);
      expect(existsSync(`${info.logPath}.1`)).toBe(false);
    });
  }

  it("keeps 20 MB × 5 files by default (Docker's local driver), shown by inspect", async () => {
    const { engine } = await testEngine();
    const c = await Container.create({ image: BUSYBOX_REF, command: ['true'], ...NO_NETWORK, engine });
    expect((await c.inspect()).hostConfig.log).toEqual({ maxSize: 20 * 1024 * 1024, maxFile: 5 });
  });

  for (const detach of [false, true])
    it(`follow across rotations gets every numbered line exactly once, in order (${detach ? 'detached: berth-monitor rotates' : 'attached: the zygote rotates'})`, async () => {
      const { engine } = await testEngine();
      // 30000 lines, one record each (~690 KiB of log): ~85 rotations of 8 KiB files while the
      // follower reads; 100 files keep all of it, so every line must come out, once.
      const c = await Container.create({
        image: BUSYBOX_REF,
        ...NO_NETWORK,
        engine,
        detach,
        log: { maxSize: '8k', maxFile: 100 },
        command: ['sh', '-c', 'sleep 0.3; i=1; while [ $i -le 30000 ]; do echo $i; i=$((i+1)); done'],
      });
      await c.start();
      let text = '';
      for await (const l of c.logs({ follow: true })) text += l.text;
      expectConsecutive(text, 30000);
      expect(text.startsWith('1\n')).toBe(true);
      // Rotated while it was followed. Each read of the program's pipe (up to 64 KiB when the
      // machine is busy and output piles up) is one record, so the file count depends on the
      // load: at least a few files, often ~85.
      expect(logFiles((await c.inspect()).logPath).length).toBeGreaterThan(2);
    });

  it('refuses bad log options with INVALID_ARGUMENT naming the field, before any record exists', async () => {
    const { engine } = await testEngine();
    const bad: Array<[unknown, string]> = [
      [{ maxSize: '10x' }, 'log.maxSize'],
      [{ maxSize: 0 }, 'log.maxSize'],
      [{ maxSize: -5 }, 'log.maxSize'],
      [{ maxSize: '1.5.m' }, 'log.maxSize'],
      [{ maxFile: 0 }, 'log.maxFile'],
      [{ maxFile: 1.5 }, 'log.maxFile'],
      [{ maxSize: '1m', other: 1 }, 'log.other'],
    ];
    for (const [log, field] of bad) {
      const e = await Container.create({ image: BUSYBOX_REF, ...NO_NETWORK, engine, log } as never).catch(
        (x: unknown) => x,
      );
      expect(e, JSON.stringify(log)).toBeInstanceOf(BerthError);
      expect((e as BerthError).code).toBe('INVALID_ARGUMENT');
      expect((e as Error).message).toContain(field);
    }
    expect(await Container.list({ engine, all: true })).toEqual([]);
  });
});
