/**
 * Removing a container: its directories leave their paths at once (renamed into a trash entry,
 * so no later start or create sees them half removed) and are deleted off the event loop; what
 * a removal killed half-way leaves is deleted by the next engine's sweep.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Container, Engine } from '../../src/index.js';
import { BUSYBOX_REF, NO_NETWORK, testEngine } from '../helpers/engine.js';

const trash = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('.trash-'));

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
  expect(cond()).toBe(true);
}

describe('container removal', () => {
  it('takes the directories of a container that ran off their paths before remove() resolves, then deletes them in the background', async () => {
    const { engine, root } = await testEngine();
    const c = await Container.run(BUSYBOX_REF, ['sh', '-c', 'echo out; echo err >&2'], { engine, ...NO_NETWORK });
    await c.wait();
    const id = await c.id();
    const p = engine.containers.paths(id);
    expect(existsSync(join(p.dir, 'upper'))).toBe(true);
    await c.remove();
    expect(existsSync(p.dir)).toBe(false);
    expect(existsSync(p.runDir)).toBe(false);
    await until(
      () => trash(join(root, 'containers')).length === 0 && trash(join(root, 'run', 'containers')).length === 0,
    );
  });

  it('a removal killed half-way is swept by the next engine: its trash, and a directory whose record is gone (but not one younger than a minute, which a create may be making)', async () => {
    const { engine, root } = await testEngine();
    const dir = join(root, 'containers');
    const ran = async () => {
      const c = await Container.run(BUSYBOX_REF, ['true'], { engine, ...NO_NETWORK });
      await c.wait();
      return c.id();
    };
    // killed after the rename into the trash, before the deletion
    const a = await ran();
    const trashed = join(dir, `.trash-${a}-0badf00d`);
    renameSync(join(dir, a), trashed);
    await engine.containers.records.delete(a);
    // killed after deleting the record, before moving the directory
    const b = await ran();
    await engine.containers.records.delete(b);
    const old = new Date(Date.now() - 120_000);
    utimesSync(join(dir, b), old, old);
    // a create under way in another process: its directory, not yet its record
    const young = join(dir, 'f'.repeat(64));
    mkdirSync(join(young, 'upper'), { recursive: true });
    writeFileSync(join(young, 'upper', 'x'), 'x');

    const next = new Engine({ root, runRoot: join(root, 'run') });
    try {
      const c = await Container.create({ image: BUSYBOX_REF, command: ['true'], engine: next, ...NO_NETWORK });
      await until(() => !existsSync(trashed) && !existsSync(join(dir, b)) && trash(dir).length === 0);
      expect(existsSync(young)).toBe(true);
      await c.remove();
    } finally {
      next.close();
    }
  });
});
