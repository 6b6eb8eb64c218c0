/**
 * Two Node processes on one root see one state: a second process lists, inspects, stops and
 * removes a container the first one started.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

const run = promisify(execFile);

describe('several processes on one root', () => {
  it('a second process lists, inspects, stops and removes a container the first started', async () => {
    const { engine, root } = await testEngine();
    const events: string[] = [];
    engine.on('container', (e) => events.push(e.action));
    const c = await Container.run(
      BUSYBOX_REF,
      ['sh', '-c', 'trap "echo bye; exit 5" TERM; echo ready; while true; do sleep 0.05; done'],
      { engine, name: 'shared' },
    );
    await expect.poll(() => c.logs(), { timeout: 5000 }).toContain('ready');
    const pid = (await c.inspect()).state.pid;
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/second-process.ts', root, 'shared'],
      { timeout: 30_000 },
    );
    const steps = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step: string; value: unknown })
        .map((s) => [s.step, s.value]),
    );
    expect(steps.list).toEqual([{ name: 'shared', state: 'running' }]);
    expect(steps.inspect).toEqual({ status: 'running', pid });
    expect(steps.stopped).toMatchObject({ status: 'exited', exitCode: 5 });
    expect(steps.removed).toBe(0);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    await expect(c.inspect()).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    // Events written by the other process reach this one.
    await expect
      .poll(() => events, { timeout: 2000 })
      .toEqual(expect.arrayContaining(['create', 'start', 'kill', 'die', 'stop', 'destroy']));
  });
});
