/**
 * Containers whose owning engine process was SIGKILLed: the next engine on the root removes the
 * autoRemove ones (record and cgroup) and keeps the others as exited.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/index.js';
import { BUSYBOX_REF, testEngine } from '../helpers/engine.js';
import { processGone } from '../helpers/process.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Starts two containers in a child engine process (autoRemove, then not), prints their ids, waits to be killed. */
const OWNER = `
import { Container, Engine } from '@src/index.ts';
const [root] = process.argv.slice(2);
const engine = new Engine({ root, runRoot: root + '/run' });
const ids = [];
for (const autoRemove of [true, false]) {
  const c = await Container.run('${BUSYBOX_REF}', ['sleep', '60'], { engine, network: 'none', autoRemove });
  ids.push(await c.id());
}
console.log(ids.join(' '));
await new Promise(() => undefined);
`;

/** Runs {@link OWNER} for `root`, SIGKILLs it once its containers run; resolves with their ids. */
async function ownerKilled(root: string): Promise<string[]> {
  const script = path.join(root, 'owner.mts');
  fs.writeFileSync(script, OWNER.replaceAll('@src', path.join(REPO, 'src')));
  const proc = spawn(process.execPath, ['--import', 'tsx', script, root], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  try {
    const id = await new Promise<string>((resolve, reject) => {
      createInterface({ input: proc.stdout }).once('line', resolve);
      proc.once('exit', (code) => reject(new Error(`the owner process exited (${String(code)}) before printing`)));
    });
    return id.split(' ');
  } finally {
    proc.kill('SIGKILL');
    await exited;
  }
}

/** The host pid recorded for container `id` under `root`. */
function recordedPid(root: string, id: string): number {
  return (
    JSON.parse(fs.readFileSync(path.join(root, 'containers', `${id}.json`), 'utf8')) as { state: { pid: number } }
  ).state.pid;
}

describe('containers whose owner process died', () => {
  it('the first container call of a new engine on the root (an inspect of another one) removes an autoRemove one, record and cgroup, and keeps the other as exited', async () => {
    const { root } = await testEngine();
    const [removed, kept] = (await ownerKilled(root)) as [string, string];
    // Its containers die with the owner's zygote, a moment after it.
    for (const id of [removed, kept]) await processGone(recordedPid(root, id));
    const engine = new Engine({ root, runRoot: `${root}/run` });
    try {
      const other = await engine.containers.get(kept);
      expect(other.state.status).toBe('exited');
      expect(other.state.exitCode).toBe(137);
      expect(fs.existsSync(path.join(root, 'containers', `${removed}.json`))).toBe(false);
      expect(await engine.cgroups?.exists(removed)).toBe(false);
      expect((await engine.containers.list({ all: true })).map((c) => c.id)).toEqual([kept]);
    } finally {
      engine.close();
    }
  });
});
