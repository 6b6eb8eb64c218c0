/**
 * `berth/vitest`: the fixture example runs green, a failing test shows its container's last log
 * lines, and a worker killed with SIGKILL leaves no container behind for the next engine.
 *
 * Each case runs a separate vitest process on the built package (`dist/`, through the package's
 * own `berth` and `berth/vitest` exports), as a project using berth would.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/index.js';
import { testEngine } from '../helpers/engine.js';
import { processGone } from '../helpers/process.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const VITEST = path.join(REPO, 'node_modules', 'vitest', 'vitest.mjs');
const FIXTURES = 'test/fixtures/vitest/vitest.config.ts';

interface Run {
  code: number | null;
  out: string;
}

/** Starts `vitest run` with `args` in the repository, with `env` added; `exited` resolves with its output. */
function vitest(args: string[], env: Record<string, string>): { pid: number; exited: Promise<Run> } {
  const child = spawn(process.execPath, [VITEST, 'run', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env, FORCE_COLOR: '0', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: the test can end it and its workers together
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, out })));
  return { pid: child.pid!, exited };
}

describe('berth/vitest', () => {
  it('runs the fixture example in examples/vitest green: a file-scoped server reached with connect(), a fresh container per test', async () => {
    const { exited } = vitest(['--config', 'examples/vitest/vitest.config.ts'], {});
    const run = await exited;
    expect(run.out).toMatch(/Tests\s+4 passed \(4\)/);
    expect(run.code).toBe(0);
  }, 120_000);

  it("prints a failed test's container log lines and removes the container", async () => {
    const { engine, root } = await testEngine();
    const { exited } = vitest(['--config', FIXTURES, 'failing'], { BERTH_ROOT: root, BERTH_RUN_ROOT: `${root}/run` });
    const run = await exited;
    expect(run.code).toBe(1);
    expect(run.out).toContain('said-before-the-failure');
    expect(run.out).toMatch(/last log lines of container [0-9a-f]{64}/);
    expect(await engine.containers.list({ all: true })).toEqual([]);
  }, 120_000);

  it("a worker killed with SIGKILL leaves no container: both die with it, and the next engine's first call removes their records and cgroups", async () => {
    const { root } = await testEngine();
    const outFile = path.join(root, 'fixture-out.json');
    const run = vitest(['--config', FIXTURES, 'killed'], {
      BERTH_ROOT: root,
      BERTH_RUN_ROOT: `${root}/run`,
      BERTH_FIXTURE_OUT: outFile,
    });
    try {
      while (!fs.existsSync(outFile)) await sleep(50);
    } finally {
      // The worker first (the containers' owner), then vitest's own process group.
      const out = fs.existsSync(outFile)
        ? (JSON.parse(fs.readFileSync(outFile, 'utf8')) as { pid: number })
        : undefined;
      if (out) process.kill(out.pid, 'SIGKILL');
      process.kill(-run.pid, 'SIGKILL');
      await run.exited;
    }
    const { ids } = JSON.parse(fs.readFileSync(outFile, 'utf8')) as { ids: string[] };
    expect(ids).toHaveLength(2);
    const pids = ids.map(
      (id) =>
        (
          JSON.parse(fs.readFileSync(path.join(root, 'containers', `${id}.json`), 'utf8')) as {
            state: { pid: number };
          }
        ).state.pid,
    );
    for (const pid of pids) await processGone(pid);
    const next = new Engine({ root, runRoot: `${root}/run` });
    try {
      expect(await next.containers.list({ all: true })).toEqual([]);
      for (const id of ids) {
        expect(fs.existsSync(path.join(root, 'containers', `${id}.json`))).toBe(false);
        expect(await next.cgroups?.exists(id)).toBe(false);
      }
    } finally {
      next.close();
    }
  }, 120_000);
});
