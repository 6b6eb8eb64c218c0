/**
 * Containers belong to the process that created them: when it dies, even by SIGKILL, its
 * containers die with it, and the next engine on the root records them as exited (and removes
 * the autoRemove ones).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { Container, Network } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

describe('ownership', () => {
  it('a creator killed with SIGKILL leaves no running container behind', async () => {
    const { engine, root } = await testEngine();
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/owner-process.ts', root, BUSYBOX_REF], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`owner exited early with ${code}`)));
      });
      const { pids, zygote } = JSON.parse(line) as { pids: number[]; zygote: number };
      for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(true);
      child.kill('SIGKILL');
      await expect.poll(() => [zygote, ...pids].filter((p) => existsSync(`/proc/${p}`)), { timeout: 3000 }).toEqual([]);
      const all = await Container.list({ engine, all: true });
      expect(all.map((c) => [c.name, c.state])).toEqual([['owned', 'exited']]);
      // Their endpoints on the default bridge were released when their exit was recorded.
      await expect
        .poll(async () => Object.keys((await new Network('bridge', { engine }).inspect()).containers))
        .toEqual([]);
      const info = await new Container('owned', { engine }).inspect();
      expect(info.state).toMatchObject({ exitCode: 137, running: false });
      expect(info.state.error).toMatch(/owned it exited/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
