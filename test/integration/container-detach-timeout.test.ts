/**
 * The run time limit of a detached container is enforced by its monitor: it holds after the
 * process that started the container has exited.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/index.js';
import type { BerthEvent } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';

/** Runs the fixture on `root`: it starts a detached `sleep 60` with `timeout` ms and exits at once. */
async function startAndExit(root: string, timeout: number): Promise<string> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/detach-timeout-process.ts', root, BUSYBOX_REF, String(timeout)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code).toBe(0);
  return (JSON.parse(out) as { id: string }).id;
}

describe('detached container run time limit', () => {
  it('kills a detached sleep 60 with timeout 1500 ms after its creator exited: exit 137, state.timedOut, timeout before die, seen by another engine', async () => {
    const { engine, root } = await testEngine();
    const since = Date.now();
    const id = await startAndExit(root, 1500);
    const c = new Container(id, { engine });
    // The creator is gone: only the monitor can enforce the limit now.
    expect((await c.wait({ timeout: 20_000 })).exitCode).toBe(137);
    const info = await c.inspect();
    expect(info.state.exitCode).toBe(137);
    expect(info.state.signal).toBe(9);
    expect(info.state.timedOut).toBe(true);
    expect(info.state.finishedAt!.getTime() - info.state.startedAt!.getTime()).toBeGreaterThanOrEqual(1500);
    const actions: string[] = [];
    for await (const e of engine.events({
      since,
      until: Date.now() + 200,
      type: ['container'],
    }) as AsyncIterable<BerthEvent>)
      if (e.id === info.id) actions.push(e.action);
    expect(actions.filter((a) => a === 'timeout' || a === 'die')).toEqual(['timeout', 'die']);
  }, 60_000);
});
