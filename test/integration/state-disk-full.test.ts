/**
 * A really full disk (a tiny tmpfs): every write fails cleanly and leaves the old state.
 * Needs root to mount; skipped with a printed reason otherwise.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KernelError } from '../../src/errors.js';
import { EventLog } from '../../src/events/event-log.js';
import { isTempFileName, readJsonFile, writeFileAtomic } from '../../src/state/atomic.js';
import { RecordStore } from '../../src/state/record-store.js';
import { tempDir } from '../helpers/tmp.js';

function tinyFs(): string | undefined {
  const dir = tempDir('state-full');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'berth-test', dir], { stdio: 'pipe' });
    return dir;
  } catch (e) {
    console.warn(
      `[state-disk-full] skipped: cannot mount a tmpfs (${(e as Error).message.split('\n')[0]}); run as root`,
    );
    return undefined;
  }
}

/** Fills the file system at `dir` until writes fail with ENOSPC. */
function fill(dir: string): void {
  const fd = fs.openSync(path.join(dir, 'filler'), 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
}

const canMount = process.getuid?.() === 0;

describe.skipIf(!canMount)('state on a full disk', () => {
  it('atomic writes, record updates and event appends fail with ENOSPC and keep the old state', async () => {
    const dir = tinyFs();
    if (dir === undefined) return;
    const file = path.join(dir, 'plain.json');
    await writeFileAtomic(file, JSON.stringify({ v: 'old' }));
    const store = new RecordStore<{ id: string; pad: string }>({ dir: path.join(dir, 'records') });
    await store.create('r', { id: 'r', pad: 'old' });
    await store.reserveName('web', 'r');
    const log = new EventLog(dir);
    await log.append({ type: 'container', action: 'create', id: 'r' });
    fill(dir);

    const big = 'x'.repeat(64 * 1024);
    const e1 = await writeFileAtomic(file, JSON.stringify({ v: big })).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(KernelError);
    expect(e1).toMatchObject({ errnoCode: 'ENOSPC' });
    expect(await readJsonFile(file)).toEqual({ v: 'old' });

    await expect(store.update('r', (r) => ({ ...r, pad: big }))).rejects.toMatchObject({ errnoCode: 'ENOSPC' });
    expect(await store.get('r')).toEqual({ id: 'r', pad: 'old' });

    await expect(
      log.append({ type: 'container', action: 'start', id: 'r', attributes: { pad: big.slice(0, 60_000) } }),
    ).rejects.toBeInstanceOf(KernelError);

    for (const d of [dir, store.dir]) expect(fs.readdirSync(d).filter(isTempFileName)).toEqual([]);

    fs.unlinkSync(path.join(dir, 'filler')); // space again: everything works, nothing is stuck
    expect(await store.update('r', (r) => ({ ...r, pad: 'new' }))).toEqual({ id: 'r', pad: 'new' });
    await log.append({ type: 'container', action: 'start', id: 'r' });
    expect((await log.read()).map((e) => e.action)).toEqual(['create', 'start']);
    expect(await store.resolve('web')).toBe('r');
  });
});
