/**
 * Detached containers (`detach: true`) on the real kernel: they outlive their creator (even one
 * killed with SIGKILL), their output keeps being recorded, their exit code is recorded by the
 * monitor, and any later process can attach, follow, stop and remove them.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

/** Runs the detach fixture on `root`; resolves with the container ids once it has started them. */
async function startDetached(root: string, mode: 'exit' | 'kill') {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/detach-process.ts', root, BUSYBOX_REF, mode],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`creator exited early with ${code}`)));
  });
  return { child, ids: (JSON.parse(line) as { ids: string[] }).ids };
}

/** PSS of a process in KiB. */
function pssKiB(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return Number(m?.[1]);
}

/** The monitor of a detached container: the parent of its PID 1. */
function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('detached containers', () => {
  for (const mode of ['exit', 'kill'] as const) {
    it(`outlive a creator that ${mode === 'exit' ? 'exits' : 'is killed with SIGKILL'}; output after it is gone is logged`, async () => {
      const { engine, root } = await testEngine();
      const { child } = await startDetached(root, mode);
      if (mode === 'kill') child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const logger = new Container('logger', { engine });
      expect((await logger.inspect()).state.running).toBe(true);
      await sleep(1000);
      await logger.exec(['touch', '/tmp/go']); // its second line, from a process started after the creator
      expect((await logger.wait()).exitCode).toBe(3);
      expect(await logger.logs({ stderr: false })).toBe('before\nafter\n');
      const lines = [];
      for await (const l of logger.logs()) lines.push(l);
      expect(lines.map((l) => [l.stream, l.text])).toEqual([
        ['stdout', 'before\n'],
        ['stdout', 'after\n'],
        ['stderr', 'err-after\n'],
      ]);
      // The second line was written over a second after the first, and timed when it was.
      expect(lines[1]!.time.getTime() - lines[0]!.time.getTime()).toBeGreaterThan(800);

      // A writer nobody reads did not stall: all 8 MiB are in its log.
      const chatty = new Container('chatty', { engine });
      expect((await chatty.wait()).exitCode).toBe(0);
      const text = await chatty.logs();
      expect(text.length).toBe(8 * 1024 * 1024 + 'done\n'.length + 1);

      // autoRemove: removed by whoever sees its exit first.
      await expect
        .poll(async () => (await Container.list({ engine, all: true })).map((c) => c.name).includes('rm'), {
          timeout: 5000,
        })
        .toBe(false);

      // A later process types into the detached terminal and the stdin pipe, then stops them.
      const shell = new Container('shell', { engine });
      const a = await shell.attach();
      let out = '';
      a.stdout.on('data', (d: Buffer) => (out += d.toString()));
      a.stdin!.write('echo $((2+3))x\n');
      await expect.poll(() => out).toContain('5x\r\n');
      await a.detach();
      const reader = new Container('reader', { engine });
      const r = await reader.attach();
      r.stdin!.write('hello\n');
      await expect.poll(() => reader.logs()).toBe('got hello\n');
      await r.detach();
      await shell.stop({ timeout: 1 });
      expect((await shell.inspect()).state.running).toBe(false);
      await reader.remove({ force: true });
      await shell.remove();
      await logger.remove();
      await chatty.remove();
    });
  }

  it('keeps only a small monitor beside each one', async () => {
    const { engine } = await testEngine();
    await using c = await Container.run(BUSYBOX_REF, ['sleep', '60'], { engine, detach: true });
    const info = await c.inspect();
    expect(info.hostConfig.detach).toBe(true);
    const monitor = parentOf(info.state.pid);
    expect(readFileSync(`/proc/${monitor}/cmdline`, 'utf8').split('\0')[0]).toMatch(/monitor/);
    const pss = pssKiB(monitor);
    expect(pss).toBeGreaterThan(0);
    expect(pss).toBeLessThan(1024);
    // Stopped from this engine: the exit is the monitor's record of the signal.
    await c.stop({ timeout: 0 });
    expect((await c.inspect()).state).toMatchObject({ exitCode: 137, signal: 9, running: false });
    expect(existsSync(`/proc/${monitor}`)).toBe(false);
  });
});
